//! The root `aws` integration config (`@backstage/integration-aws-node` 0.2.4, contract
//! 5.3.1): `mainAccount`, `accounts[]`, `accountDefaults`, with the same startup validation
//! messages.

use serde_json::{Map, Value};

use crate::error::{AuthError, InputError};
use crate::secret::Secret;

#[derive(Debug, Clone, Default)]
pub struct MainAccount {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Account {
    pub account_id: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub profile: Option<String>,
    pub role_name: Option<String>,
    pub region: Option<String>,
    pub partition: Option<String>,
    pub external_id: Option<String>,
    pub web_identity_token_file: Option<String>,
}

impl Account {
    /// `arn:<partition ?? aws>:iam::<accountId>:role/<roleName>` when a role is configured.
    pub fn role_arn(&self) -> Option<String> {
        self.role_name.as_ref().map(|role| {
            format!(
                "arn:{}:iam::{}:role/{role}",
                self.partition.as_deref().unwrap_or("aws"),
                self.account_id
            )
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct AccountDefaults {
    pub role_name: Option<String>,
    pub partition: Option<String>,
    pub region: Option<String>,
    pub external_id: Option<String>,
    pub web_identity_token_file: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AwsIntegrationConfig {
    pub main_account: MainAccount,
    pub accounts: Vec<Account>,
    pub account_defaults: AccountDefaults,
}

struct Reader<'a> {
    map: Option<&'a Map<String, Value>>,
    path: String,
}

impl<'a> Reader<'a> {
    fn new(value: Option<&'a Value>, path: String) -> Result<Self, InputError> {
        match value {
            None | Some(Value::Null) => Ok(Reader { map: None, path }),
            Some(Value::Object(map)) => Ok(Reader {
                map: Some(map),
                path,
            }),
            Some(_) => Err(InputError::new(path, "an object")),
        }
    }

    /// An optional string; `''` reads as absent, as the JS truthiness checks treat it.
    fn string(&self, key: &str) -> Result<Option<String>, InputError> {
        match self.map.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(InputError::new(format!("{}.{key}", self.path), "a string")),
        }
    }
}

fn account_error(id: &str, what: &str) -> AuthError {
    AuthError::Config(format!("AWS integration account {id} {what}"))
}

fn read_account(value: &Value, index: usize) -> Result<Account, AuthError> {
    let r = Reader::new(Some(value), format!("config.aws.accounts[{index}]"))?;
    let account_id = r.string("accountId")?.ok_or_else(|| {
        AuthError::Config(format!(
            "Missing required config value at 'aws.accounts[{index}].accountId'"
        ))
    })?;
    let a = Account {
        account_id,
        access_key_id: r.string("accessKeyId")?,
        secret_access_key: r
            .string("secretAccessKey")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        profile: r.string("profile")?,
        role_name: r.string("roleName")?,
        region: r.string("region")?,
        partition: r.string("partition")?,
        external_id: r.string("externalId")?,
        web_identity_token_file: r.string("webIdentityTokenFile")?,
    };
    let id = a.account_id.as_str();
    let checks: [(bool, &str); 11] = [
        (a.access_key_id.is_some() && a.secret_access_key.is_none(), "has an access key ID configured, but no secret access key."),
        (a.access_key_id.is_none() && a.secret_access_key.is_some(), "has a secret access key configured, but no access key ID"),
        (a.profile.is_some() && a.access_key_id.is_some(), "has both an access key ID and a profile configured, but only one must be specified"),
        // Backstage's own wording for profile + roleName, kept verbatim.
        (a.profile.is_some() && a.role_name.is_some(), "has both an access key ID and a role name configured, but only one must be specified"),
        (a.role_name.is_none() && a.external_id.is_some(), "has an external ID configured, but no role name."),
        (a.role_name.is_none() && a.region.is_some(), "has an STS region configured, but no role name."),
        (a.role_name.is_none() && a.partition.is_some(), "has an IAM partition configured, but no role name."),
        (a.web_identity_token_file.is_some() && a.access_key_id.is_some(), "has both a web identity token file and static credentials configured, but only one must be specified"),
        (a.web_identity_token_file.is_some() && a.profile.is_some(), "has both a web identity token file and a profile configured, but only one must be specified"),
        (a.web_identity_token_file.is_some() && a.role_name.is_none(), "has a web identity token file configured, but no role name."),
        (a.web_identity_token_file.is_some() && a.external_id.is_some(), "has both a web identity token file and an external ID configured; AssumeRoleWithWebIdentity does not support external IDs."),
    ];
    if let Some((_, what)) = checks.iter().find(|(bad, _)| *bad) {
        return Err(account_error(id, what));
    }
    Ok(a)
}

fn read_main(value: Option<&Value>) -> Result<MainAccount, AuthError> {
    let r = Reader::new(value, "config.aws.mainAccount".into())?;
    let m = MainAccount {
        access_key_id: r.string("accessKeyId")?,
        secret_access_key: r
            .string("secretAccessKey")?
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        profile: r.string("profile")?,
        region: r.string("region")?,
    };
    let main = |what: &str| AuthError::Config(format!("The main AWS integration account {what}"));
    if m.access_key_id.is_some() && m.secret_access_key.is_none() {
        return Err(main(
            "has an access key ID configured, but no secret access key.",
        ));
    }
    if m.access_key_id.is_none() && m.secret_access_key.is_some() {
        return Err(main(
            "has a secret access key configured, but no access key ID",
        ));
    }
    if m.profile.is_some() && m.access_key_id.is_some() {
        return Err(main(
            "has both an access key ID and a profile configured, but only one must be specified",
        ));
    }
    Ok(m)
}

fn read_defaults(value: Option<&Value>) -> Result<AccountDefaults, AuthError> {
    let r = Reader::new(value, "config.aws.accountDefaults".into())?;
    let d = AccountDefaults {
        role_name: r.string("roleName")?,
        partition: r.string("partition")?,
        region: r.string("region")?,
        external_id: r.string("externalId")?,
        web_identity_token_file: r.string("webIdentityTokenFile")?,
    };
    let defaults = |what: &str| {
        AuthError::Config(format!(
            "AWS integration account default configuration {what}"
        ))
    };
    let no_role = d.role_name.is_none();
    if no_role && d.external_id.is_some() {
        return Err(defaults("has an external ID configured, but no role name."));
    }
    if no_role && d.region.is_some() {
        return Err(defaults("has an STS region configured, but no role name."));
    }
    if no_role && d.partition.is_some() {
        return Err(defaults(
            "has an IAM partition configured, but no role name.",
        ));
    }
    if no_role && d.web_identity_token_file.is_some() {
        return Err(defaults(
            "has a web identity token file configured, but no role name.",
        ));
    }
    if d.web_identity_token_file.is_some() && d.external_id.is_some() {
        return Err(defaults("has both a web identity token file and an external ID configured; AssumeRoleWithWebIdentity does not support external IDs."));
    }
    Ok(d)
}

/// Reads the JSON of the root config's `aws` key (`undefined`/`null`: no integration config).
pub fn read(value: Option<&Value>) -> Result<AwsIntegrationConfig, AuthError> {
    let root = Reader::new(value, "config.aws".into())?;
    let Some(map) = root.map else {
        return Ok(AwsIntegrationConfig::default());
    };
    let accounts = match map.get("accounts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| read_account(v, i))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(InputError::new("config.aws.accounts", "an array").into()),
    };
    Ok(AwsIntegrationConfig {
        main_account: read_main(map.get("mainAccount"))?,
        accounts,
        account_defaults: read_defaults(map.get("accountDefaults"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        read(Some(&v)).unwrap_err().to_string()
    }

    #[test]
    fn validation_messages_match_backstage() {
        assert_eq!(
            err(json!({"accounts": [{"accountId": "111", "accessKeyId": "A"}]})),
            "AWS integration account 111 has an access key ID configured, but no secret access key."
        );
        assert_eq!(
            err(json!({"accounts": [{"accountId": "111", "externalId": "x"}]})),
            "AWS integration account 111 has an external ID configured, but no role name."
        );
        assert_eq!(
            err(json!({"mainAccount": {"profile": "p", "accessKeyId": "A", "secretAccessKey": "s"}})),
            "The main AWS integration account has both an access key ID and a profile configured, but only one must be specified"
        );
        assert_eq!(
            err(json!({"accountDefaults": {"region": "eu-west-1"}})),
            "AWS integration account default configuration has an STS region configured, but no role name."
        );
        assert!(err(json!({"accounts": [{"roleName": "r"}]})).contains("accountId"));
        let ok = read(Some(
            &json!({"accounts": [{"accountId": "222", "roleName": "r", "partition": "aws-cn"}]}),
        ))
        .unwrap();
        assert_eq!(
            ok.accounts[0].role_arn().unwrap(),
            "arn:aws-cn:iam::222:role/r"
        );
        assert_eq!(
            read(Some(
                &json!({"mainAccount": {"accessKeyId": "A", "secretAccessKey": " s \n"}})
            ))
            .unwrap()
            .main_account
            .secret_access_key
            .unwrap()
            .expose(),
            "s"
        );
    }
}
