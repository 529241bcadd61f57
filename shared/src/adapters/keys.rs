//! Where the signing secret comes from: Secrets Manager in AWS
//! (`SIGNING_KEY_SECRET_ARN`), a local file in development (`SIGNING_KEY_FILE`).

use crate::domain::jwt::KeySet;

pub async fn load_keys() -> Result<KeySet, String> {
    if let Ok(arn) = std::env::var("SIGNING_KEY_SECRET_ARN") {
        if !arn.is_empty() {
            let cfg = super::aws::sdk_config(super::aws::Service::SecretsManager);
            let client = aws_sdk_secretsmanager::Client::new(&cfg);
            let out = client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|_| "cannot read the signing secret".to_string())?;
            let json = out
                .secret_string()
                .ok_or("the signing secret has no string value")?;
            return KeySet::from_json(json);
        }
    }
    let path = std::env::var("SIGNING_KEY_FILE")
        .map_err(|_| "neither SIGNING_KEY_SECRET_ARN nor SIGNING_KEY_FILE is set".to_string())?;
    let json = std::fs::read_to_string(&path)
        .map_err(|_| format!("cannot read SIGNING_KEY_FILE {path}"))?;
    KeySet::from_json(&json)
}
