//! The GSM 03.38 default alphabet, to decide whether a text fits 7-bit SMS.

/// The basic character set (ESC at 0x1B left out: it is not a character).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The extension table, reached with ESC (each counts as two septets).
const EXTENSION: &str = "\u{0C}^{}\\[~]|€";

/// True when every character of `text` has a GSM 03.38 septet, so Kannel can
/// send it as 7-bit (160 characters per SMS instead of 70 with UCS-2).
pub fn is_gsm(text: &str) -> bool {
    text.chars().all(|c| BASIC.contains(c) || EXTENSION.contains(c))
}

#[cfg(test)]
mod tests {
    use super::is_gsm;

    #[test]
    fn basic_and_extension_characters_are_gsm() {
        assert_eq!(BASIC_COUNT, super::BASIC.chars().count());
        assert!(is_gsm("Hello, world! @£$¥ èéùìò ÆæßÉ ¡¿ ÄÖÑÜ§ äöñüà ΔΦΓΛΩΠΨΣΘΞ _\r\n"));
        assert!(is_gsm("€[]{}^~|\\"));
        assert!(is_gsm(""));
    }

    #[test]
    fn other_characters_are_not() {
        for text in ["ç", "á", "ê", "€ 😀", "ǘ", "`", "Привет", "日本", "\t"] {
            assert!(!is_gsm(text), "{text:?} is not GSM");
        }
    }

    /// 128 code points less ESC.
    const BASIC_COUNT: usize = 127;
}
