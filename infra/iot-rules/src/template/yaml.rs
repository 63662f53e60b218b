//! The template's YAML as a small tree, with CloudFormation intrinsics in one shape whether they
//! were written in short form (`!Ref X`) or long form (`Ref: X`, `Fn::Sub: ...`).

use saphyr::{LoadableYamlNode, Scalar, Yaml};

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
    /// An intrinsic function: `Ref`, `GetAtt`, `Sub`, ... (the name without `Fn::` or `!`), or
    /// any other YAML tag, kept as written so that it can be refused by name.
    Fn(String, Box<Node>),
}

impl Node {
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> &[(String, Node)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }
}

/// Parses the template text (one YAML document).
pub(crate) fn parse(text: &str) -> Result<Node, TemplateError> {
    let documents = Yaml::load_from_str(text).map_err(|e| TemplateError::Yaml(e.to_string()))?;
    let mut documents = documents.into_iter();
    let Some(document) = documents.next() else {
        return Err(TemplateError::Yaml(
            "the file holds no YAML document".to_owned(),
        ));
    };
    if documents.next().is_some() {
        return Err(TemplateError::Yaml(
            "the file holds more than one YAML document".to_owned(),
        ));
    }
    convert(&document)
}

fn convert(yaml: &Yaml<'_>) -> Result<Node, TemplateError> {
    Ok(match yaml {
        Yaml::Value(scalar) => scalar_node(scalar),
        Yaml::Representation(text, _, _) => Node::Str(text.to_string()),
        Yaml::Sequence(items) => Node::Seq(items.iter().map(convert).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (key, value) in map {
                let key = match key {
                    Yaml::Value(Scalar::String(s)) => s.to_string(),
                    Yaml::Value(Scalar::Integer(i)) => i.to_string(),
                    Yaml::Value(Scalar::Boolean(b)) => b.to_string(),
                    Yaml::Representation(text, _, _) => text.to_string(),
                    _ => {
                        return Err(TemplateError::Yaml(format!(
                            "unsupported mapping key {key:?}: keys must be strings"
                        )));
                    }
                };
                entries.push((key, convert(value)?));
            }
            // `Ref: X` and `Fn::Name: args` are the long forms of `!Ref X` and `!Name args`.
            if let [(key, _)] = entries.as_slice() {
                let name = if key == "Ref" {
                    Some("Ref".to_owned())
                } else {
                    key.strip_prefix("Fn::").map(str::to_owned)
                };
                if let Some(name) = name {
                    let Some((_, value)) = entries.pop() else {
                        return Err(TemplateError::Yaml("internal: empty mapping".to_owned()));
                    };
                    return Ok(Node::Fn(name, Box::new(value)));
                }
            }
            Node::Map(entries)
        }
        Yaml::Tagged(tag, inner) => {
            let name = if tag.handle == "!" {
                tag.suffix.clone()
            } else {
                format!("{}{}", tag.handle, tag.suffix)
            };
            Node::Fn(name, Box::new(convert(inner)?))
        }
        Yaml::Alias(_) => {
            return Err(TemplateError::Yaml(
                "a YAML alias could not be resolved".to_owned(),
            ));
        }
        Yaml::BadValue => {
            return Err(TemplateError::Yaml(
                "a value could not be parsed".to_owned(),
            ));
        }
    })
}

fn scalar_node(scalar: &Scalar<'_>) -> Node {
    match scalar {
        Scalar::Null => Node::Null,
        Scalar::Boolean(b) => Node::Bool(*b),
        Scalar::Integer(i) => Node::Int(*i),
        Scalar::FloatingPoint(f) => Node::Float(f.into_inner()),
        Scalar::String(s) => Node::Str(s.to_string()),
    }
}
