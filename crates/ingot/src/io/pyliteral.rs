//! A parser for the small subset of Python literals that .npy headers use: a dict of string
//! keys whose values are strings, True/False/None, integers, and tuples or lists of those.
//! Nesting is bounded so a hostile header cannot overflow the stack.

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Py {
    Str(String),
    Bool(bool),
    None,
    /// Integers are kept as text: a hostile header may hold any number of digits.
    Int(String),
    Seq(Vec<Py>),
    Dict(Vec<(String, Py)>),
}

const MAX_DEPTH: usize = 16;

/// Parses one literal that fills the whole text (surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Result<Py, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at byte {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Py, String> {
        if depth > MAX_DEPTH {
            return Err("nesting too deep".into());
        }
        match self.peek() {
            None => Err("unexpected end of header".into()),
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b'}') {
                        return Ok(Py::Dict(items));
                    }
                    let k = match self.value(depth + 1)? {
                        Py::Str(k) => k,
                        other => return Err(format!("dict key must be a string, got {other:?}")),
                    };
                    if !self.eat(b':') {
                        return Err(format!("expected ':' at byte {}", self.i));
                    }
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                    if !self.eat(b',') {
                        if self.eat(b'}') {
                            return Ok(Py::Dict(items));
                        }
                        return Err(format!("expected ',' or '}}' at byte {}", self.i));
                    }
                }
            }
            Some(open @ (b'(' | b'[')) => {
                let close = if open == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        return Ok(Py::Seq(items));
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        if self.eat(close) {
                            return Ok(Py::Seq(items));
                        }
                        return Err(format!(
                            "expected ',' or '{}' at byte {}",
                            close as char, self.i
                        ));
                    }
                }
            }
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i) {
                        None => return Err("unterminated string".into()),
                        Some(&c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let c = *self.s.get(self.i + 1).ok_or("unterminated string")?;
                            out.push(c);
                            self.i += 2;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                String::from_utf8(out)
                    .map(Py::Str)
                    .map_err(|_| "string is not UTF-8".into())
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i])
                    .unwrap_or("")
                    .to_string();
                // Python 2 wrote long integers with an L suffix.
                if matches!(self.s.get(self.i), Some(b'L' | b'l')) {
                    self.i += 1;
                }
                if digits.trim_start_matches(['-', '+']).is_empty() {
                    return Err(format!("bad number at byte {start}"));
                }
                Ok(Py::Int(digits))
            }
            Some(_) => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphabetic() {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Ok(Py::Bool(true)),
                    b"False" => Ok(Py::Bool(false)),
                    b"None" => Ok(Py::None),
                    _ => Err(format!("unexpected character at byte {start}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numpy_headers() {
        let h = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n";
        let v = parse(h).unwrap();
        assert_eq!(
            v,
            Py::Dict(vec![
                ("descr".into(), Py::Str("<f4".into())),
                ("fortran_order".into(), Py::Bool(false)),
                (
                    "shape".into(),
                    Py::Seq(vec![Py::Int("3".into()), Py::Int("4".into())])
                ),
            ])
        );
        assert_eq!(parse("(5L,)").unwrap(), Py::Seq(vec![Py::Int("5".into())]));
        assert!(parse("{'a': 1").is_err());
        assert!(parse(&"[".repeat(100)).is_err());
        assert!(parse("{'a': 1} x").is_err());
    }
}
