//! `DispatchStrategy`: picks the strategy named by `kubernetes.io/auth-provider` (contract 4).
//! Generic over the strategy handle so the napi layer can dispatch to JS objects (native or
//! plain JS strategies) with the same lookup rules and messages.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::AuthError;

/// How JS's `String(value)` renders the provider in Backstage's messages.
pub fn provider_label(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_string(),
        Some(Value::Null) => "null".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                other => provider_label(Some(other)),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".to_string(),
    }
}

pub struct DispatchStrategy<S> {
    strategies: HashMap<String, S>,
}

impl<S> DispatchStrategy<S> {
    pub fn new(strategies: HashMap<String, S>) -> Self {
        DispatchStrategy { strategies }
    }

    /// Own keys only, matched case-sensitively: unlike Backstage's plain-object lookup, a
    /// provider named `toString` or `__proto__` finds nothing rather than a prototype member.
    pub fn for_credential(&self, provider: &str) -> Result<&S, AuthError> {
        self.strategies.get(provider).ok_or_else(|| {
            AuthError::contract(format!(
                "authProvider \"{provider}\" has no AuthenticationStrategy associated with it"
            ))
        })
    }

    pub fn for_validation(&self, provider: &str) -> Result<&S, AuthError> {
        self.strategies.get(provider).ok_or_else(|| {
            AuthError::contract(format!(
                "authProvider \"{provider}\" has no config associated with it"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_like_js_string() {
        assert_eq!(provider_label(None), "undefined");
        assert_eq!(provider_label(Some(&json!("linode"))), "linode");
        assert_eq!(provider_label(Some(&json!(5))), "5");
        assert_eq!(provider_label(Some(&json!(1.5))), "1.5");
        assert_eq!(provider_label(Some(&json!({"a": 1}))), "[object Object]");
        assert_eq!(provider_label(Some(&json!(["a", null, 2]))), "a,,2");
    }

    #[test]
    fn messages_match_backstage() {
        let d: DispatchStrategy<()> = DispatchStrategy::new(HashMap::from([("aks".into(), ())]));
        assert!(d.for_credential("aks").is_ok());
        assert_eq!(
            d.for_credential("linode").unwrap_err().to_string(),
            "authProvider \"linode\" has no AuthenticationStrategy associated with it"
        );
        assert_eq!(
            d.for_validation("toString").unwrap_err().to_string(),
            "authProvider \"toString\" has no config associated with it"
        );
    }
}
