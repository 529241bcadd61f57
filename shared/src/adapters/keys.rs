//! Where the signing secret comes from: Secrets Manager in AWS
//! (`SIGNING_KEY_SECRET_ARN`), a local file in development (`SIGNING_KEY_FILE`). A warm
//! function reads it again every `SIGNING_KEY_REFRESH_SECONDS` (`runtime::KeysDep`), so a
//! rotation (`contact-auth-admin rotate-key`) reaches every instance within that bound.

fn client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&super::aws::sdk_config(
        super::aws::Service::SecretsManager,
    ))
}

/// The current version (`AWSCURRENT`) of a secret's string.
pub async fn get_secret(id: &str) -> Result<String, String> {
    let out = client()
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|_| "cannot read the signing secret".to_string())?;
    out.secret_string()
        .map(String::from)
        .ok_or_else(|| "the signing secret has no string value".into())
}

/// A new current version of a secret (`contact-auth-admin rotate-key`).
pub async fn put_secret(id: &str, json: &str) -> Result<(), String> {
    client()
        .put_secret_value()
        .secret_id(id)
        .secret_string(json)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "cannot write the signing secret: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })
}

/// The current version of the signing secret document, as JSON.
pub async fn read_secret() -> Result<String, String> {
    if let Ok(arn) = std::env::var("SIGNING_KEY_SECRET_ARN") {
        if !arn.is_empty() {
            return get_secret(&arn).await;
        }
    }
    let path = std::env::var("SIGNING_KEY_FILE")
        .map_err(|_| "neither SIGNING_KEY_SECRET_ARN nor SIGNING_KEY_FILE is set".to_string())?;
    std::fs::read_to_string(&path).map_err(|_| format!("cannot read SIGNING_KEY_FILE {path}"))
}
