//! `PinnipedHelper`: Backstage's helper class, over `PinnipedClient`.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

use super::convert::{self, PreparedInputs};
use super::realm::Realm;
use crate::options::Options;
use crate::strategies::pinniped::{PinnipedClient, PinnipedParams};
use crate::types::InputSpec;

#[napi]
pub struct PinnipedHelper {
    client: Arc<PinnipedClient>,
    inputs: PreparedInputs,
    realm: Realm,
}

#[napi]
impl PinnipedHelper {
    /// `options`: `{ timeoutMs? }`; `realm`: the caller's value factories (see `realm.rs`).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        options: Unknown,
        #[napi(ts_arg_type = "RealmFactories")] realm: Option<Object>,
    ) -> Result<Self> {
        let realm = Realm::from_js(realm)?;
        let options =
            convert::options(&env, &options, &["timeoutMs"]).map_err(|e| realm.input(&env, e))?;
        let opts = Options::new(options.as_ref(), "options").map_err(|e| realm.input(&env, e))?;
        let mut client = PinnipedClient::default();
        if let Some(timeout) = opts.millis("timeoutMs").map_err(|e| realm.input(&env, e))? {
            client.timeout = timeout;
        }
        Ok(PinnipedHelper {
            client: Arc::new(client),
            inputs: PreparedInputs::new(InputSpec {
                cluster_name: true,
                cluster_url: true,
                cluster_tls: true,
                ..InputSpec::default()
            }),
            realm,
        })
    }

    /// Resolves `{ key, cert, expirationTimestamp }`; rejects with an `Error` that carries the
    /// Concierge's or the Kubernetes `Status` message and the HTTP status.
    #[napi(
        catch_unwind,
        ts_return_type = "Promise<{ key: string; cert: string; expirationTimestamp: string }>"
    )]
    pub fn token_credential_request<'e>(
        &self,
        env: &'e Env,
        cluster_details: Unknown<'e>,
        pinniped_params: Unknown<'e>,
    ) -> Result<PromiseRaw<'e, Unknown<'e>>> {
        let inputs =
            convert::cluster_details(env, &cluster_details, &self.inputs).and_then(|cluster| {
                let params = convert::json(env, &pinniped_params, "pinnipedParams")?;
                PinnipedParams::from_json(params.as_ref()).map(|p| (cluster, p))
            });
        let (cluster, params) = match inputs {
            Ok(inputs) => inputs,
            Err(err) => return PromiseRaw::reject(env, self.realm.input(env, err)),
        };
        let client = Arc::clone(&self.client);
        let realm = self.realm.clone();
        env.spawn_future_with_callback(
            async move { Ok(client.token_credential_request(&cluster, &params).await) },
            move |env, result| match result {
                Ok(certs) => {
                    let mut out = serde_json::Map::new();
                    out.insert("key".into(), Value::String(certs.key.into_exposed()));
                    out.insert("cert".into(), Value::String(certs.cert.to_string()));
                    out.insert(
                        "expirationTimestamp".into(),
                        Value::String(certs.expiration_timestamp),
                    );
                    realm.object(env, out)
                }
                Err(err) => Err(realm.auth(env, err)),
            },
        )
    }
}
