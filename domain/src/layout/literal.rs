//! A small parser for the Python literals Ultralytics writes into ONNX
//! metadata (`{0: 'person'}`, `[640, 640]`, `32`, `True`). Garbage yields an
//! error value, never a panic; nesting is bounded so hostile input cannot
//! exhaust the stack.

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Lists and tuples.
    List(Vec<Literal>),
    Dict(Vec<(Literal, Literal)>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {position}")]
pub struct LiteralError {
    pub position: usize,
    pub message: &'static str,
}

const MAX_DEPTH: usize = 32;

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn fail<T>(&self, message: &'static str) -> Result<T, LiteralError> {
        Err(LiteralError {
            position: self.pos,
            message,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Literal, LiteralError> {
        if depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        self.skip_ws();
        match self.peek() {
            None => self.fail("unexpected end"),
            Some('{') => self.dict(depth),
            Some('[') => self.seq(']', depth),
            Some('(') => self.seq(')', depth),
            Some(q @ ('\'' | '"')) => self.string(q).map(Literal::Str),
            Some(c) if c.is_ascii_digit() || matches!(c, '-' | '+' | '.') => self.number(),
            Some(c) if c.is_alphabetic() => self.word(),
            Some(_) => self.fail("unexpected character"),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Literal, LiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.eat('}') {
                return Ok(Literal::Dict(items));
            }
            let key = self.value(depth + 1)?;
            if !self.eat(':') {
                return self.fail("expected ':'");
            }
            let value = self.value(depth + 1)?;
            items.push((key, value));
            if !self.eat(',') && !matches!(self.peek_after_ws(), Some('}')) {
                return self.fail("expected ',' or '}'");
            }
        }
    }

    fn seq(&mut self, close: char, depth: usize) -> Result<Literal, LiteralError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(Literal::List(items));
            }
            items.push(self.value(depth + 1)?);
            if !self.eat(',') && self.peek_after_ws() != Some(close) {
                return self.fail("expected ',' or closing bracket");
            }
        }
    }

    fn peek_after_ws(&mut self) -> Option<char> {
        self.skip_ws();
        self.peek()
    }

    fn string(&mut self, quote: char) -> Result<String, LiteralError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.fail("unterminated string");
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return self.fail("unterminated string");
                    };
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        // Python keeps unknown escapes verbatim.
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Result<char, LiteralError> {
        let end = self.pos + digits;
        let Some(slice) = self.chars.get(self.pos..end) else {
            return self.fail("truncated escape");
        };
        let text: String = slice.iter().collect();
        let code = u32::from_str_radix(&text, 16).ok().and_then(char::from_u32);
        match code {
            Some(c) => {
                self.pos = end;
                Ok(c)
            }
            None => self.fail("bad escape"),
        }
    }

    fn number(&mut self) -> Result<Literal, LiteralError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Literal::Int(i));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Literal::Float(f)),
            _ => {
                self.pos = start;
                self.fail("bad number")
            }
        }
    }

    fn word(&mut self) -> Result<Literal, LiteralError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "True" | "true" => Ok(Literal::Bool(true)),
            "False" | "false" => Ok(Literal::Bool(false)),
            "None" | "null" => Ok(Literal::None),
            _ => {
                self.pos = start;
                self.fail("unknown name")
            }
        }
    }
}

/// Parses one literal; trailing non-space text is an error.
pub fn parse_literal(text: &str) -> Result<Literal, LiteralError> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let v = p.value(0)?;
    p.skip_ws();
    if p.peek().is_some() {
        return p.fail("unexpected trailing text");
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(x: &str) -> Literal {
        Literal::Str(x.to_owned())
    }

    #[test]
    fn ultralytics_forms() {
        assert_eq!(
            parse_literal("{0: 'Normal', 1: 'Fall'}").unwrap(),
            Literal::Dict(vec![
                (Literal::Int(0), s("Normal")),
                (Literal::Int(1), s("Fall"))
            ])
        );
        assert_eq!(
            parse_literal(r#" { 0 : "it's" , 1:'say \'hi\'', } "#).unwrap(),
            Literal::Dict(vec![
                (Literal::Int(0), s("it's")),
                (Literal::Int(1), s("say 'hi'"))
            ])
        );
        assert_eq!(
            parse_literal("[640, 640]").unwrap(),
            Literal::List(vec![Literal::Int(640); 2])
        );
        assert_eq!(
            parse_literal("(640, 480,)").unwrap(),
            Literal::List(vec![Literal::Int(640), Literal::Int(480)])
        );
        assert_eq!(parse_literal("32").unwrap(), Literal::Int(32));
        assert_eq!(parse_literal("-1.5e2").unwrap(), Literal::Float(-150.0));
        assert_eq!(parse_literal("True").unwrap(), Literal::Bool(true));
        assert_eq!(parse_literal("None").unwrap(), Literal::None);
        assert_eq!(parse_literal(r"'\x41\u00e9\q'").unwrap(), s("Aé\\q"));
        assert_eq!(parse_literal("{}").unwrap(), Literal::Dict(vec![]));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            "",
            "{",
            "{0 'a'}",
            "[1 2]",
            "'abc",
            "abc",
            "1.2.3",
            "{0: 'a'} x",
            "@",
            r"'\x4'",
        ] {
            assert!(parse_literal(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            parse_literal("[1 2]").unwrap_err().to_string(),
            "expected ',' or closing bracket at character 3"
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            parse_literal(&deep).unwrap_err().message,
            "nested too deeply"
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,64}") {
            let _ = parse_literal(&text);
        }

        #[test]
        fn never_panics_on_near_literals(text in "[\\[\\]{}(),:'\"\\\\0-9a-zA-Z .+-]{0,64}") {
            let _ = parse_literal(&text);
        }
    }
}
