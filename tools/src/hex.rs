//! Hex input: `28 00 00`, `28:00:00`, `0x2800..`, `28-00`, split over several arguments.

use std::io::Read;

use crate::CliError;

/// Joins `args` (or reads stdin when the only argument is `-`) and decodes the hex digits,
/// ignoring whitespace, `:`, `-`, `_`, `,` and a leading `0x` on each group.
pub fn read_hex(args: &[String]) -> Result<Vec<u8>, CliError> {
    let text = if args.len() == 1 && args[0] == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError(format!("reading stdin: {e}")))?;
        s
    } else {
        args.join(" ")
    };
    parse_hex(&text)
}

/// Decodes hex text (see [`read_hex`]).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, CliError> {
    let mut digits = Vec::with_capacity(text.len());
    for group in text.split(|c: char| c.is_whitespace() || matches!(c, ':' | '-' | '_' | ',')) {
        let g = group
            .strip_prefix("0x")
            .or_else(|| group.strip_prefix("0X"))
            .unwrap_or(group);
        for c in g.chars() {
            let d = c
                .to_digit(16)
                .ok_or_else(|| CliError(format!("not a hex digit: {c:?}")))?;
            digits.push(d as u8);
        }
    }
    if digits.is_empty() {
        return Err(CliError("no hex bytes given".into()));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(CliError(format!(
            "odd number of hex digits ({})",
            digits.len()
        )));
    }
    Ok(digits.chunks_exact(2).map(|p| p[0] << 4 | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_separators_and_prefixes() {
        assert_eq!(
            parse_hex("28 00:0a-FF_10,0x11").unwrap(),
            [0x28, 0x00, 0x0a, 0xff, 0x10, 0x11]
        );
        assert_eq!(parse_hex("0x2800\n0a").unwrap(), [0x28, 0x00, 0x0a]);
        assert_eq!(read_hex(&["28".into(), "00".into()]).unwrap(), [0x28, 0]);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(
            parse_hex("280").unwrap_err().to_string(),
            "odd number of hex digits (3)"
        );
        assert_eq!(
            parse_hex("2g").unwrap_err().to_string(),
            "not a hex digit: 'g'"
        );
        assert_eq!(
            parse_hex(" : ").unwrap_err().to_string(),
            "no hex bytes given"
        );
    }
}
