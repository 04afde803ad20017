//! Text in the shapes Kannel and fakesmsc use: UTF-16BE, percent-encoding.

use serde_json::Value;

/// True when a stored message has the field `name` = `value`.
pub fn has_field(message: &Value, name: &str, value: &str) -> bool {
    message["fields"].as_array().is_some_and(|f| f.iter().any(|p| p[0] == name && p[1] == value))
}

/// `text` as UTF-16BE bytes, what fakesmsc's `ucs2` MO payload decodes to.
pub fn utf16be(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Every byte as `%XX`: safe inside fakesmsc's space-separated line.
pub fn percent_encode_all(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Kannel's url-decoding of an MT payload: `+` is a space, `%XX` a byte.
pub fn url_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (other, _) => out.push(other),
        }
        i += 1;
    }
    out
}

/// UTF-16BE bytes as text, or the bytes in hex when they are not UTF-16BE.
pub fn decode_utf16be(bytes: &[u8]) -> Result<String, String> {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|pair| match pair {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(()),
        })
        .collect::<Result<_, _>>()
        .map_err(|_| format!("odd length: {}", hex::encode(bytes)))?;
    String::from_utf16(&units).map_err(|_| format!("not UTF-16: {}", hex::encode(bytes)))
}
