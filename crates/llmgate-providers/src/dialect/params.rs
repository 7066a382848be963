//! [`Params`]: the request's parameters as a dialect reads them. A typed field of the client's
//! request wins ([`Params::or`]); else the key among the client's other fields (`extra`);
//! else the deployment's `default_params`. Parameters the provider has no equivalent for go
//! through [`Params::refuse`], which honours `drop_params`.
//!
//! Two readings of a client's `null`, because the dialects differ and their tests say so:
//! [`Params::get`] and [`Params::entries`] take `null` as not set anywhere (the default shows
//! through), [`Params::raw`] and [`Params::raw_entries`] take a client's `null` as a value that
//! hides the default.

use serde_json::{Map, Value};

use super::Ctx;
use crate::error::Error;

/// The parameters of one request over the deployment's defaults (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params<'a> {
    ctx: Ctx<'a>,
    client: &'a Map<String, Value>,
    defaults: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// `client` (the request's other fields, or a map a dialect built of them) over the
    /// deployment's `default_params`.
    pub(crate) fn new(ctx: &Ctx<'a>, client: &'a Map<String, Value>) -> Self {
        Params {
            ctx: *ctx,
            client,
            defaults: &ctx.dep.default_params,
        }
    }

    /// The client's value for `key`, else the default; `null` counts as not set.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        let set = |m: &'a Map<String, Value>| m.get(key).filter(|v| !v.is_null());
        set(self.client).or_else(|| set(self.defaults))
    }

    /// The client's value for `key` as sent (a `null` included, hiding the default), else the
    /// default.
    pub(crate) fn raw(&self, key: &str) -> Option<&'a Value> {
        self.client.get(key).or_else(|| self.defaults.get(key))
    }

    /// The client's typed field when it has one, else [`Params::raw`] read by `read`.
    pub(crate) fn or<T>(
        &self,
        typed: Option<T>,
        key: &str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Option<T> {
        typed.or_else(|| self.raw(key).and_then(read))
    }

    /// Every parameter set to something but `null`: the client's, then the defaults the client
    /// did not set; each key once.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let client = self.client;
        let set = client.iter().filter(|(_, v)| !v.is_null());
        let defaults = self
            .defaults
            .iter()
            .filter(move |(k, v)| !v.is_null() && client.get(*k).is_none_or(Value::is_null));
        set.chain(defaults).map(|(k, v)| (k.as_str(), v))
    }

    /// Every parameter as sent: the client's (`null`s included), then the defaults for keys the
    /// client did not send; each key once.
    pub(crate) fn raw_entries(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let client = self.client;
        let defaults = self
            .defaults
            .iter()
            .filter(move |(k, _)| !client.contains_key(*k));
        client.iter().chain(defaults).map(|(k, v)| (k.as_str(), v))
    }

    /// For each of `keys` the request (or the deployment) sets to something but `null`, as
    /// [`Params::raw`] reads it: dropped with `drop_params`, else the request fails naming it.
    pub(crate) fn refuse(&self, keys: &[&'static str]) -> Result<(), Error> {
        for key in keys {
            if self.raw(key).is_some_and(|v| !v.is_null()) {
                self.ctx.unsupported(key)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmgate_core::{DeploymentSpec, Endpoint, LlmRequest, ProviderKind};
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn client_over_defaults_and_the_two_readings_of_null() {
        let mut dep = DeploymentSpec::new("d", "g", ProviderKind::Anthropic, "m");
        dep.default_params = map(json!({"top_k": 5, "seed": 1, "stop": "x", "gone": null}));
        let llm = LlmRequest::parse(Endpoint::ChatCompletions, br#"{"model":"g","messages":[]}"#)
            .unwrap();
        let ctx = Ctx::new(&llm, &dep);
        let client = map(json!({"top_k": 7, "seed": null, "logit_bias": {"1": 2}}));
        let p = Params::new(&ctx, &client);
        assert_eq!(p.get("top_k"), Some(&json!(7)));
        assert_eq!(p.get("seed"), Some(&json!(1)));
        assert_eq!(p.raw("seed"), Some(&Value::Null));
        assert_eq!(p.get("gone"), None);
        assert_eq!(p.or(Some(3), "top_k", Value::as_u64), Some(3));
        assert_eq!(p.or(None, "top_k", Value::as_u64), Some(7));
        let keys: Vec<_> = p.entries().map(|(k, _)| k).collect();
        assert_eq!(keys, ["logit_bias", "top_k", "seed", "stop"]);
        let keys: Vec<_> = p.raw_entries().map(|(k, _)| k).collect();
        assert_eq!(keys, ["logit_bias", "seed", "top_k", "gone", "stop"]);
        let e = p.refuse(&["seed", "logit_bias"]).unwrap_err();
        assert!(e.to_string().contains("`logit_bias`"), "{e}");
        dep.drop_params = true;
        let ctx = Ctx::new(&llm, &dep);
        assert!(Params::new(&ctx, &client).refuse(&["logit_bias"]).is_ok());
    }
}
