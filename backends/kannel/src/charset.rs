//! The charsets Kannel uses for message text, inbound and outbound.

/// A charset this backend can decode and encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Kannel's internal charset for 7-bit text, and this gateway's.
    Utf8,
    /// UCS-2 messages (`coding=2`) arrive as UTF-16BE, surrogate pairs included.
    Utf16Be,
    /// Kannel's `8-BIT` (`coding=1`) and ISO-8859-1: one byte per character.
    Latin1,
    /// RapidSMS's default outbound charset; other characters become `?`.
    Ascii,
}

impl Charset {
    /// The charset for a name such as Kannel's `%C` ("UTF-8", "UTF-16BE",
    /// "8-BIT", "ISO-8859-1"); case, `-` and `_` are ignored. `None` when unknown.
    pub fn from_name(name: &str) -> Option<Charset> {
        let key: String = name.chars().filter(|c| *c != '-' && *c != '_').map(|c| c.to_ascii_uppercase()).collect();
        match key.as_str() {
            "UTF8" => Some(Charset::Utf8),
            "UTF16BE" | "UTF16" | "UCS2" | "UCS2BE" => Some(Charset::Utf16Be),
            "8BIT" | "ISO88591" | "LATIN1" | "L1" | "BINARY" => Some(Charset::Latin1),
            "ASCII" | "USASCII" => Some(Charset::Ascii),
            _ => None,
        }
    }

    /// What a Kannel `coding` (`%c`) implies when `charset` is absent or unknown:
    /// 2 is UCS-2, 1 is 8-bit; 7-bit (0 or absent) is UTF-8, the charset
    /// Kannel converts 7-bit text to.
    pub fn for_coding(coding: Option<&str>) -> Charset {
        match coding.map(str::trim) {
            Some("2") => Charset::Utf16Be,
            Some("1") => Charset::Latin1,
            _ => Charset::Utf8,
        }
    }

    /// Decodes `bytes`; malformed input becomes U+FFFD rather than an error,
    /// because losing one character is better than losing the message.
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Utf16Be => decode_utf16(bytes),
            Charset::Latin1 | Charset::Ascii => bytes.iter().map(|b| char::from(*b)).collect(),
        }
    }

    /// Encodes `text`; characters the charset lacks become `?`.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Charset::Latin1 => text.chars().map(|c| u8::try_from(c).unwrap_or(b'?')).collect(),
            Charset::Ascii => text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect(),
        }
    }
}

/// UTF-16, big-endian unless a byte-order mark says otherwise (the mark is dropped).
fn decode_utf16(bytes: &[u8]) -> String {
    let (little, body) = match bytes {
        [0xFE, 0xFF, rest @ ..] => (false, rest),
        [0xFF, 0xFE, rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    let units = body.chunks(2).map(|pair| match (pair, little) {
        ([a, b], false) => u16::from_be_bytes([*a, *b]),
        ([a, b], true) => u16::from_le_bytes([*a, *b]),
        // A dangling odd byte cannot be a character.
        _ => 0xFFFD,
    });
    char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

/// The charset of an inbound text: Kannel's `charset` when this backend knows
/// it, otherwise what `coding` implies. Without either, text that is not valid
/// UTF-8 is taken as ISO-8859-1 (old Kannel setups deliver 7-bit text that way).
pub fn for_incoming(charset: Option<&str>, coding: Option<&str>, text: &[u8]) -> Charset {
    let named = charset.map(str::trim).filter(|c| !c.is_empty());
    if let Some(known) = named.and_then(Charset::from_name) {
        return known;
    }
    let implied = Charset::for_coding(coding);
    let unspecified = named.is_none() && coding.is_none_or(|c| c.trim().is_empty());
    if unspecified && std::str::from_utf8(text).is_err() {
        return Charset::Latin1;
    }
    implied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_loosely() {
        assert_eq!(Charset::from_name("UTF-8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_name("utf8"), Some(Charset::Utf8));
        assert_eq!(Charset::from_name("UTF-16BE"), Some(Charset::Utf16Be));
        assert_eq!(Charset::from_name("UCS-2"), Some(Charset::Utf16Be));
        assert_eq!(Charset::from_name("8-BIT"), Some(Charset::Latin1));
        assert_eq!(Charset::from_name("iso-8859-1"), Some(Charset::Latin1));
        assert_eq!(Charset::from_name("ascii"), Some(Charset::Ascii));
        assert_eq!(Charset::from_name("KOI8-R"), None);
    }

    #[test]
    fn utf16be_decodes_bmp_and_surrogate_pairs() {
        // "é😀" = U+00E9, U+1F600 (D83D DE00)
        let bytes = [0x00, 0xE9, 0xD8, 0x3D, 0xDE, 0x00];
        assert_eq!(Charset::Utf16Be.decode(&bytes), "é😀");
        assert_eq!(Charset::Utf16Be.encode("é😀"), bytes);
    }

    #[test]
    fn utf16_honours_byte_order_marks_and_survives_garbage() {
        assert_eq!(Charset::Utf16Be.decode(&[0xFE, 0xFF, 0x00, 0x41]), "A");
        assert_eq!(Charset::Utf16Be.decode(&[0xFF, 0xFE, 0x41, 0x00]), "A");
        assert_eq!(Charset::Utf16Be.decode(&[0x00, 0x41, 0x00]), "A\u{FFFD}");
        assert_eq!(Charset::Utf16Be.decode(&[0xD8, 0x3D, 0x00, 0x41]), "\u{FFFD}A");
    }

    #[test]
    fn latin1_and_ascii_round_trip_what_they_can() {
        assert_eq!(Charset::Latin1.decode(&[0x63, 0x61, 0x66, 0xE9]), "café");
        assert_eq!(Charset::Latin1.encode("café €"), b"caf\xE9 ?");
        assert_eq!(Charset::Ascii.encode("café"), b"caf?");
    }

    #[test]
    fn incoming_charset_falls_back_on_coding_then_on_validity() {
        assert_eq!(for_incoming(Some("UTF-16BE"), Some("2"), b""), Charset::Utf16Be);
        assert_eq!(for_incoming(Some("8-BIT"), Some("1"), b""), Charset::Latin1);
        assert_eq!(for_incoming(Some("WEIRD"), Some("2"), b""), Charset::Utf16Be);
        assert_eq!(for_incoming(None, Some("1"), b"\xE9"), Charset::Latin1);
        assert_eq!(for_incoming(None, None, "é".as_bytes()), Charset::Utf8);
        assert_eq!(for_incoming(None, None, b"caf\xE9"), Charset::Latin1);
        assert_eq!(for_incoming(Some("UTF-8"), Some("0"), b"caf\xE9"), Charset::Utf8);
    }
}
