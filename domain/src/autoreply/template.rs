//! Placeholders in automated replies and canned responses.
//!
//! - `{{name}}` the customer's name, `{{conversation}}` the conversation
//!   number, `{{sla_target}}` the first-response target ("10 minutes");
//! - `{{KEY}}` (or `{{var.KEY}}`) a live variable set with `setAutomationVariable`;
//! - `{{if KEY < 10}}…{{else}}…{{end}}` a condition on a variable, with
//!   `<`, `<=`, `>`, `>=`, `==`, `!=` (numbers compared as numbers, otherwise
//!   as text; `{{if KEY}}` holds when the variable is set and not empty).
//!
//! Unknown placeholders are left as they are, so a typo shows instead of vanishing.

use std::collections::HashMap;

/// What placeholders are filled with.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub builtins: HashMap<&'static str, String>,
    pub variables: HashMap<String, String>,
}

impl Values {
    fn get(&self, key: &str) -> Option<&str> {
        let key = key.trim();
        if let Some(v) = self.builtins.get(key) {
            return Some(v);
        }
        let key = key.strip_prefix("var.").unwrap_or(key);
        self.variables.get(key).map(String::as_str)
    }
}

/// The `{{…}}` tags of a text, with the literal text between them.
enum Piece<'a> {
    Text(&'a str),
    Tag(&'a str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        out.push(Piece::Tag(&rest[open + 2..open + 2 + close]));
        rest = &rest[open + 2 + close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn condition_holds(cond: &str, values: &Values) -> bool {
    for op in ["<=", ">=", "==", "!=", "<", ">"] {
        if let Some((left, right)) = cond.split_once(op) {
            let Some(actual) = values.get(left) else {
                return false;
            };
            let expected = right.trim().trim_matches('"');
            let ordering = match (actual.trim().parse::<f64>(), expected.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => Some(actual.trim().cmp(expected)),
            };
            let Some(ord) = ordering else {
                return false;
            };
            use std::cmp::Ordering::*;
            return match op {
                "<=" => ord != Greater,
                ">=" => ord != Less,
                "==" => ord == Equal,
                "!=" => ord != Equal,
                "<" => ord == Less,
                _ => ord == Greater,
            };
        }
    }
    values.get(cond).is_some_and(|v| !v.trim().is_empty())
}

/// Fills the placeholders of `text`.
pub fn render(text: &str, values: &Values) -> String {
    let mut out = String::with_capacity(text.len());
    // Each open `if`: (its condition held, now in its else branch).
    let mut stack: Vec<(bool, bool)> = vec![];
    let emitting = |stack: &[(bool, bool)]| stack.iter().all(|(held, in_else)| held != in_else);
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => {
                if emitting(&stack) {
                    out.push_str(t);
                }
            }
            Piece::Tag(tag) => {
                let t = tag.trim();
                if let Some(cond) = t.strip_prefix("if ") {
                    stack.push((condition_holds(cond, values), false));
                } else if t == "else" && !stack.is_empty() {
                    if let Some(top) = stack.last_mut() {
                        top.1 = true;
                    }
                } else if t == "end" && !stack.is_empty() {
                    stack.pop();
                } else if emitting(&stack) {
                    match values.get(t) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("{{");
                            out.push_str(tag);
                            out.push_str("}}");
                        }
                    }
                }
            }
        }
    }
    out
}

/// "10 minutes", "1 hour", "2 hours 30 minutes".
pub fn describe_duration(secs: i64) -> String {
    let minutes = (secs.max(0) + 59) / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    let unit = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (h, m) {
        (0, m) => unit(m, "minute", "minutes"),
        (h, 0) => unit(h, "hour", "hours"),
        (h, m) => format!(
            "{} {}",
            unit(h, "hour", "hours"),
            unit(m, "minute", "minutes")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        let mut v = Values::default();
        v.builtins.insert("name", "Giulia".into());
        v.builtins.insert("conversation", "42".into());
        v.variables.insert("stock".into(), "7".into());
        v.variables.insert("promo".into(), "SUMMER".into());
        v
    }

    #[test]
    fn builtins_and_variables_are_filled() {
        assert_eq!(
            render(
                "Ciao {{name}}, pratica n. {{conversation}}, code {{var.promo}} {{promo}}",
                &values()
            ),
            "Ciao Giulia, pratica n. 42, code SUMMER SUMMER"
        );
        assert_eq!(render("{{unknown}} stays", &values()), "{{unknown}} stays");
    }

    #[test]
    fn conditions_compare_numbers() {
        let t = "Stock: {{if stock < 10}}limited pre-order{{else}}available{{end}}.";
        assert_eq!(render(t, &values()), "Stock: limited pre-order.");
        let mut v = values();
        v.variables.insert("stock".into(), "25".into());
        assert_eq!(render(t, &v), "Stock: available.");
        v.variables.remove("stock");
        assert_eq!(render(t, &v), "Stock: available.");
        assert_eq!(
            render("{{if promo}}Code {{promo}}{{end}}!", &values()),
            "Code SUMMER!"
        );
        assert_eq!(render("{{if promo == SUMMER}}yes{{end}}", &values()), "yes");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(600), "10 minutes");
        assert_eq!(describe_duration(3600), "1 hour");
        assert_eq!(describe_duration(9000), "2 hours 30 minutes");
        assert_eq!(describe_duration(61), "2 minutes");
    }
}
