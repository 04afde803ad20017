//! `echo <text>` replies `<text>`: the quickest way to see both directions work.

use super::{App, Handled, InboundMessage};

/// Replies with whatever follows the keyword.
pub struct Echo;

/// Sent for a bare `echo`.
pub const HELP: &str = "To use echo, send: echo <text>";

#[async_trait::async_trait]
impl App for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }

    async fn handle(&self, message: &InboundMessage) -> anyhow::Result<Handled> {
        Ok(decide(&message.text))
    }

    fn decide_at_once(&self, _identity: &str, text: &str) -> Option<Handled> {
        Some(decide(text))
    }
}

fn decide(text: &str) -> Handled {
    match parse(text) {
        None => Handled::No,
        Some("") => Handled::Yes(vec![HELP.to_string()]),
        Some(rest) => Handled::Yes(vec![rest.to_string()]),
    }
}

/// The text after a case-insensitive `echo` keyword, if the message starts with it.
fn parse(text: &str) -> Option<&str> {
    let text = text.trim();
    let keyword = text.get(..4)?;
    if !keyword.eq_ignore_ascii_case("echo") {
        return None;
    }
    let rest = &text[4..];
    if rest.is_empty() {
        return Some("");
    }
    // "echoes" is not the keyword: require whitespace after it.
    rest.starts_with(char::is_whitespace).then(|| rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn keyword_is_case_insensitive_and_whole_word() {
        assert_eq!(parse("echo hello world"), Some("hello world"));
        assert_eq!(parse("  ECHO   hi "), Some("hi"));
        assert_eq!(parse("Echo"), Some(""));
        assert_eq!(parse("echoes"), None);
        assert_eq!(parse("ping"), None);
        assert_eq!(parse("éé"), None);
        assert_eq!(parse("echo ünïcode ✓"), Some("ünïcode ✓"));
    }
}
