//! API Gateway HTTP API route keys (`ANY /v1/{proxy+}`, `GET /pets/{id}`, `$default`) and the
//! route a request selects, as API Gateway chooses it: the most specific match wins (literal
//! segments over `{param}`, `{param}` over a greedy `{proxy+}`, a method over `ANY`), and
//! `$default` only when nothing else matches.

use std::collections::BTreeMap;

/// A route key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    /// `None` for `ANY` (and for `$default`).
    pub method: Option<String>,
    /// The path pattern; `None` for `$default`.
    pub path: Option<String>,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

/// How well a route matched: compared, higher is more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    routed: bool,
    literals: usize,
    params: usize,
    method: bool,
}

impl RouteKey {
    /// A route from a method (`ANY` or an HTTP method) and a path (`/a/{b}/{c+}`), or
    /// `$default` as the path.
    ///
    /// # Errors
    /// The path does not start with `/`, a `{...}` is malformed, or a greedy variable is not
    /// the last segment.
    pub fn new(method: &str, path: &str) -> Result<Self, String> {
        let method = method.trim().to_ascii_uppercase();
        let method = (method != "ANY" && method != "*").then_some(method);
        if path == "$default" {
            return Ok(RouteKey {
                method: None,
                path: None,
                segments: Vec::new(),
            });
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("route path `{path}` must start with /"));
        };
        let mut segments = Vec::new();
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) if i + 1 == parts.len() && !greedy.is_empty() => {
                        Segment::Greedy(greedy.to_owned())
                    }
                    Some(_) => {
                        return Err(format!(
                            "route path `{path}`: a greedy variable {{name+}} must be the last \
                             segment"
                        ));
                    }
                    None if !name.is_empty() && !name.contains(['{', '}']) => {
                        Segment::Param(name.to_owned())
                    }
                    None => return Err(format!("route path `{path}`: malformed {{{name}}}")),
                },
                None if part.contains(['{', '}']) => {
                    return Err(format!("route path `{path}`: malformed segment `{part}`"));
                }
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Ok(RouteKey {
            method,
            path: Some(path.to_owned()),
            segments,
        })
    }

    /// Parses a route key as written in `AWS::ApiGatewayV2::Route`: `GET /path` or `$default`.
    ///
    /// # Errors
    /// As [`RouteKey::new`], or the key has no method.
    pub fn parse(key: &str) -> Result<Self, String> {
        if key.trim() == "$default" {
            return Self::new("ANY", "$default");
        }
        let (method, path) = key
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("route key `{key}`: expected `METHOD /path` or `$default`"))?;
        Self::new(method, path.trim())
    }

    /// The route key as API Gateway writes it (`ANY /v1/{proxy+}`).
    #[must_use]
    pub fn key(&self) -> String {
        match &self.path {
            None => "$default".to_owned(),
            Some(path) => format!("{} {path}", self.method.as_deref().unwrap_or("ANY")),
        }
    }

    /// Whether this route takes a request, with its path parameters and how specific the
    /// match is.
    #[must_use]
    pub fn matches(
        &self,
        method: &str,
        path: &str,
    ) -> Option<(BTreeMap<String, String>, Specificity)> {
        if self
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return None;
        }
        let mut parameters = BTreeMap::new();
        if self.path.is_none() {
            let default = Specificity {
                routed: false,
                literals: 0,
                params: 0,
                method: false,
            };
            return Some((parameters, default));
        }
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let (mut literals, mut params) = (0, 0);
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let tail = parts.get(i..).map(|p| p.join("/")).unwrap_or_default();
                    if tail.is_empty() {
                        return None;
                    }
                    parameters.insert(name.clone(), tail);
                    return Some((
                        parameters,
                        Specificity {
                            routed: true,
                            literals,
                            params,
                            method: self.method.is_some(),
                        },
                    ));
                }
                Segment::Literal(literal) => {
                    if parts.get(i) != Some(&literal.as_str()) {
                        return None;
                    }
                    literals += 1;
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|p| !p.is_empty())?;
                    parameters.insert(name.clone(), (*value).to_owned());
                    params += 1;
                }
            }
        }
        if parts.len() != self.segments.len() {
            return None;
        }
        Some((
            parameters,
            Specificity {
                routed: true,
                // A route without variables beats any with them.
                literals: literals + usize::from(params == 0) * 1_000,
                params,
                method: self.method.is_some(),
            },
        ))
    }
}

/// The index of the route in `routes` that a request selects, with its path parameters.
#[must_use]
pub fn select<'r>(
    routes: impl IntoIterator<Item = &'r RouteKey>,
    method: &str,
    path: &str,
) -> Option<(usize, BTreeMap<String, String>)> {
    routes
        .into_iter()
        .enumerate()
        .filter_map(|(i, route)| {
            route
                .matches(method, path)
                .map(|(parameters, specificity)| (specificity, i, parameters))
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, i, parameters)| (i, parameters))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> RouteKey {
        RouteKey::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn greedy_params_and_literals_match_as_api_gateway_does() {
        let proxy = key("ANY /v1/{proxy+}");
        let Some((params, _)) = proxy.matches("PATCH", "/v1/devices/d-1") else {
            panic!("no match");
        };
        assert_eq!(params.get("proxy").map(String::as_str), Some("devices/d-1"));
        assert!(proxy.matches("GET", "/v1").is_none());
        assert!(proxy.matches("GET", "/v1/").is_none());
        assert!(proxy.matches("GET", "/v2/x").is_none());
        let pet = key("GET /pets/{id}");
        let Some((params, _)) = pet.matches("get", "/pets/7") else {
            panic!("no match");
        };
        assert_eq!(params.get("id").map(String::as_str), Some("7"));
        assert!(pet.matches("POST", "/pets/7").is_none());
        assert!(pet.matches("GET", "/pets/7/toys").is_none());
        assert_eq!(proxy.key(), "ANY /v1/{proxy+}");
    }

    #[test]
    fn the_most_specific_route_wins_and_default_comes_last() {
        let routes = [
            key("$default"),
            key("ANY /v1/{proxy+}"),
            key("GET /v1/{thing}"),
            key("POST /v1/locations"),
            key("ANY /v1/locations"),
        ];
        let pick = |m, p| select(&routes, m, p).map(|(i, _)| i);
        assert_eq!(pick("POST", "/v1/locations"), Some(3));
        assert_eq!(pick("PUT", "/v1/locations"), Some(4));
        assert_eq!(pick("GET", "/v1/devices"), Some(2));
        assert_eq!(pick("GET", "/v1/devices/x"), Some(1));
        assert_eq!(pick("GET", "/other"), Some(0));
    }

    #[test]
    fn malformed_routes_are_refused() {
        for bad in ["GET v1", "GET /a/{b+}/c", "GET /a/{}", "GET /a/b}", "/v1"] {
            assert!(RouteKey::parse(bad).is_err(), "{bad}");
        }
    }
}
