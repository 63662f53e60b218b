//! Tokenizer and recursive-descent parser of the SQL subset.

use serde_json::{Number, Value};

use super::eval::write_json_str;
use super::topic::TopicFilter;
use super::{CmpOp, Expr, Item, Literal, Sql, SqlError};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(String),
    Str(String),
    Star,
    Comma,
    Dot,
    LParen,
    RParen,
    Minus,
    Cmp(CmpOp),
    /// Something outside the subset; the parser reports it (with this message) when it gets
    /// there, so that an earlier unsupported keyword is named first.
    Bad(String),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// Byte offset in the SQL text.
    pos: usize,
}

/// Words that are keywords of the subset or of the SQL it refuses.
const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL", "CASE", "WHEN",
    "THEN", "ELSE", "END", "SET", "IN", "IS", "LIKE", "BETWEEN", "VALUE",
];

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn tokenize(text: &str) -> Result<Vec<Token>, SqlError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'*' => {
                i += 1;
                Tok::Star
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'.' => {
                i += 1;
                Tok::Dot
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'-' => {
                i += 1;
                Tok::Minus
            }
            b'=' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Bad("unsupported operator `==` (use `=`)".to_owned())
                } else {
                    i += 1;
                    Tok::Cmp(CmpOp::Eq)
                }
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Cmp(CmpOp::Ne)
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'>') => {
                    i += 2;
                    Tok::Cmp(CmpOp::Ne)
                }
                Some(b'=') => {
                    i += 2;
                    Tok::Cmp(CmpOp::Le)
                }
                _ => {
                    i += 1;
                    Tok::Cmp(CmpOp::Lt)
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Cmp(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Cmp(CmpOp::Gt)
                }
            }
            b'\'' => {
                let Some(len) = text[i + 1..].find('\'') else {
                    return Err(SqlError::new(i, "unterminated string literal"));
                };
                let s = text[i + 1..i + 1 + len].to_owned();
                i += len + 2;
                Tok::Str(s)
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if matches!(bytes.get(i), Some(b'e' | b'E')) {
                    let mut j = i + 1;
                    if matches!(bytes.get(j), Some(b'+' | b'-')) {
                        j += 1;
                    }
                    if bytes.get(j).is_some_and(u8::is_ascii_digit) {
                        i = j;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
                Tok::Number(text[start..i].to_owned())
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                Tok::Ident(text[start..i].to_owned())
            }
            _ => {
                let Some(ch) = text[i..].chars().next() else {
                    return Err(SqlError::new(i, "unexpected end of the SQL"));
                };
                let what = match ch {
                    '+' | '/' | '%' => "arithmetic is not supported",
                    '"' => "quoted identifiers are not supported",
                    '[' | ']' => "array indexing is not supported",
                    '{' | '}' => "object literals are not supported",
                    '|' => "string concatenation is not supported",
                    ';' => "only one statement is supported",
                    _ => "this character is not part of the supported SQL",
                };
                i += ch.len_utf8();
                Tok::Bad(format!("unsupported token `{ch}`: {what}"))
            }
        };
        tokens.push(Token { tok, pos: start });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos: text.len(),
    });
    Ok(tokens)
}

pub(super) fn parse(text: &str) -> Result<Sql, SqlError> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        next: 0,
    };
    parser.statement(text)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

/// How a token is named in an error message.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(word) if is_keyword(word) => word.to_ascii_uppercase(),
        Tok::Ident(word) => format!("`{word}`"),
        Tok::Number(n) => format!("`{n}`"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Star => "`*`".to_owned(),
        Tok::Comma => "`,`".to_owned(),
        Tok::Dot => "`.`".to_owned(),
        Tok::LParen => "`(`".to_owned(),
        Tok::RParen => "`)`".to_owned(),
        Tok::Minus => "`-`".to_owned(),
        Tok::Cmp(op) => format!("`{}`", op.symbol()),
        Tok::Bad(message) => message.clone(),
        Tok::Eof => "the end of the SQL".to_owned(),
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        // The token list always ends with `Eof`, and `bump` never moves past it.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.next + ahead).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.next += 1;
        }
        token
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.bump();
        }
        found
    }

    fn unexpected(&self, expected: &str) -> SqlError {
        let token = self.peek();
        let message = match &token.tok {
            Tok::Ident(w) if w.eq_ignore_ascii_case("CASE") => {
                "unsupported CASE expression".to_owned()
            }
            Tok::Ident(w) if w.eq_ignore_ascii_case("SET") => "unsupported SET clause".to_owned(),
            Tok::Ident(w) if is_keyword(w) && !is_subset_keyword(w) => {
                format!("unsupported keyword {}", w.to_ascii_uppercase())
            }
            Tok::Minus => "unsupported operator `-`: arithmetic is not supported".to_owned(),
            Tok::Star => "unsupported operator `*`: arithmetic is not supported".to_owned(),
            Tok::Bad(message) => message.clone(),
            other => format!("expected {expected}, found {}", describe(other)),
        };
        SqlError::new(token.pos, message)
    }

    fn statement(&mut self, text: &str) -> Result<Sql, SqlError> {
        if !self.eat_keyword("SELECT") {
            return Err(self.unexpected("SELECT"));
        }
        let mut star = false;
        let mut items = Vec::new();
        loop {
            let token = self.peek().clone();
            if token.tok == Tok::Star {
                if star {
                    return Err(SqlError::new(token.pos, "`*` appears twice in SELECT"));
                }
                self.bump();
                star = true;
            } else {
                items.push(self.item()?);
            }
            if self.peek().tok == Tok::Comma {
                self.bump();
            } else {
                break;
            }
        }
        if !self.eat_keyword("FROM") {
            return Err(self.unexpected("`,` or FROM"));
        }
        let Tok::Str(filter) = self.peek().tok.clone() else {
            return Err(self.unexpected("a quoted topic filter after FROM"));
        };
        let filter_pos = self.bump().pos;
        let from = TopicFilter::parse(&filter)
            .map_err(|e| SqlError::new(filter_pos, e.message().to_owned()))?;
        let condition = if self.eat_keyword("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        if self.peek().tok != Tok::Eof {
            return Err(self.unexpected("the end of the SQL"));
        }
        Ok(Sql {
            text: text.to_owned(),
            star,
            items,
            from,
            condition,
        })
    }

    fn item(&mut self) -> Result<Item, SqlError> {
        let pos = self.peek().pos;
        let expr = self.expr()?;
        let name = if self.eat_keyword("AS") {
            match &self.peek().tok {
                Tok::Ident(name) if !is_keyword(name) => {
                    let name = name.clone();
                    self.bump();
                    name
                }
                _ => return Err(self.unexpected("a name after AS")),
            }
        } else if let Expr::Field(path) = &expr {
            path.last().cloned().unwrap_or_default()
        } else {
            return Err(SqlError::new(
                pos,
                "this SELECT item needs a name: add `AS <name>`",
            ));
        };
        let mut key = String::with_capacity(name.len() + 3);
        write_json_str(&mut key, &name);
        key.push(':');
        Ok(Item { name, key, expr })
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not()?;
        while self.eat_keyword("AND") {
            let right = self.not()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, SqlError> {
        let left = self.primary()?;
        if let Tok::Cmp(op) = self.peek().tok {
            self.bump();
            let right = self.primary()?;
            if let Tok::Cmp(_) = self.peek().tok {
                return Err(self.unexpected("AND, OR or the end of the expression"));
            }
            return Ok(Expr::Compare(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let token = self.peek().clone();
        match token.tok {
            Tok::LParen => {
                self.bump();
                if self.at_keyword("SELECT") {
                    return Err(SqlError::new(self.peek().pos, "unsupported nested SELECT"));
                }
                let inner = self.expr()?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.unexpected("`)`"));
                }
                self.bump();
                Ok(inner)
            }
            Tok::Str(s) => {
                self.bump();
                Ok(Expr::Literal(Literal::new(Value::String(s))))
            }
            Tok::Number(n) => {
                self.bump();
                Ok(Expr::Literal(Literal::new(Value::Number(number(
                    &n, token.pos,
                )?))))
            }
            Tok::Minus => {
                if let Tok::Number(n) = self.peek_at(1).clone() {
                    self.bump();
                    self.bump();
                    let n = format!("-{n}");
                    return Ok(Expr::Literal(Literal::new(Value::Number(number(
                        &n, token.pos,
                    )?))));
                }
                Err(self.unexpected("an expression"))
            }
            Tok::Ident(word) => {
                if *self.peek_at(1) == Tok::LParen {
                    return self.call(&word, token.pos);
                }
                if word.eq_ignore_ascii_case("TRUE") || word.eq_ignore_ascii_case("FALSE") {
                    self.bump();
                    return Ok(Expr::Literal(Literal::new(Value::Bool(
                        word.eq_ignore_ascii_case("TRUE"),
                    ))));
                }
                if word.eq_ignore_ascii_case("NULL") {
                    self.bump();
                    return Ok(Expr::Literal(Literal::new(Value::Null)));
                }
                if word.eq_ignore_ascii_case("SELECT") {
                    return Err(SqlError::new(token.pos, "unsupported nested SELECT"));
                }
                if is_keyword(&word) {
                    return Err(self.unexpected("an expression"));
                }
                self.bump();
                let mut path = vec![word];
                while self.peek().tok == Tok::Dot {
                    self.bump();
                    let Tok::Ident(segment) = self.peek().tok.clone() else {
                        return Err(self.unexpected("a field name after `.`"));
                    };
                    self.bump();
                    path.push(segment);
                }
                Ok(Expr::Field(path))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Expr, SqlError> {
        let lower = name.to_ascii_lowercase();
        if !matches!(lower.as_str(), "topic" | "timestamp" | "clientid") {
            return Err(SqlError::new(
                pos,
                format!(
                    "unsupported function `{name}()` (supported: topic(), topic(n), timestamp(), \
                     clientid())"
                ),
            ));
        }
        self.bump(); // name
        self.bump(); // (
        let argument = if let Tok::Number(n) = &self.peek().tok {
            let n = n.clone();
            let arg_pos = self.peek().pos;
            self.bump();
            Some((n, arg_pos))
        } else {
            None
        };
        if self.peek().tok != Tok::RParen {
            return Err(self.unexpected("`)`"));
        }
        self.bump();
        match (lower.as_str(), argument) {
            ("topic", None) => Ok(Expr::Topic(None)),
            ("topic", Some((n, arg_pos))) => match n.parse::<usize>() {
                Ok(level) if level >= 1 => Ok(Expr::Topic(Some(level))),
                _ => Err(SqlError::new(
                    arg_pos,
                    format!("topic({n}): the level must be an integer from 1"),
                )),
            },
            ("timestamp", None) => Ok(Expr::Timestamp),
            ("clientid", None) => Ok(Expr::ClientId),
            (_, Some((_, arg_pos))) => Err(SqlError::new(
                arg_pos,
                format!("{lower}() takes no argument"),
            )),
            (_, None) => Err(SqlError::new(
                pos,
                format!("unsupported function `{name}()`"),
            )),
        }
    }
}

/// Keywords of the subset itself (as opposed to SQL keywords it refuses).
fn is_subset_keyword(word: &str) -> bool {
    [
        "SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "TRUE", "FALSE", "NULL",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

fn number(text: &str, pos: usize) -> Result<Number, SqlError> {
    serde_json::from_str::<Number>(text)
        .map_err(|_| SqlError::new(pos, format!("invalid number `{text}`")))
}
