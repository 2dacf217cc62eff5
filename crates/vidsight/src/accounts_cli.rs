//! `vidsight user …` and `vidsight apikey …`: account administration from the command line
//! (the first admin on a fresh install, a forgotten password, a key for a script).
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};

use vidsight_auth::{AuthService, AuthSettings, Credential, Principal, RequestContext};
use vidsight_config::Config;
use vidsight_domain::{Role, Scope};

/// The auth service on the configured database and cache, without starting any role.
pub async fn auth_service(config: &Config) -> anyhow::Result<AuthService> {
    let database = crate::app::open_database(config).await?;
    let cache = vidsight_cache::open_with_namespace(&config.cache_url, &config.cache_namespace)
        .context("opening the cache")?;
    Ok(AuthService::new(database.accounts, cache, AuthSettings::from_config(config)).await?)
}

/// A password from stdin when it is piped, else a generated one (printed once).
pub fn password_from_stdin_or_generated() -> anyhow::Result<(String, bool)> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        if !password.is_empty() {
            return Ok((password, false));
        }
    }
    Ok((
        vidsight_auth::secrets::random_token()[..24].to_owned(),
        true,
    ))
}

pub async fn create_user(config: &Config, email: &str, admin: bool) -> anyhow::Result<()> {
    let auth = auth_service(config).await?;
    let (password, generated) = password_from_stdin_or_generated()?;
    let role = if admin { Role::Admin } else { Role::Member };
    let user = auth.create_user(email, &password, role, true).await?;
    auth.audit(
        "user.created",
        Some(user.id),
        None,
        &RequestContext {
            ip: None,
            user_agent: Some("vidsight CLI".into()),
        },
        serde_json::json!({ "role": user.role, "via": "cli" }),
    )
    .await;
    println!("created {} ({}) with id {}", user.email, user.role, user.id);
    if generated {
        println!("one-time password (shown once; change it after signing in): {password}");
    }
    Ok(())
}

pub async fn reset_password(config: &Config, email: &str) -> anyhow::Result<()> {
    let auth = auth_service(config).await?;
    let email = vidsight_auth::password::normalize_email(email)?;
    let Some(record) = auth.accounts().find_user_by_email(&email).await? else {
        bail!("no account with the email {email}");
    };
    let (password, generated) = password_from_stdin_or_generated()?;
    auth.set_password(&record, &password).await?;
    auth.audit(
        "password.reset",
        Some(record.user.id),
        None,
        &RequestContext {
            ip: None,
            user_agent: Some("vidsight CLI".into()),
        },
        serde_json::json!({ "via": "cli" }),
    )
    .await;
    println!("password of {email} reset; every session of the account has ended");
    if generated {
        println!("one-time password (shown once; change it after signing in): {password}");
    }
    Ok(())
}

pub async fn create_api_key(
    config: &Config,
    email: &str,
    name: &str,
    scopes: &str,
) -> anyhow::Result<()> {
    let auth = auth_service(config).await?;
    let email = vidsight_auth::password::normalize_email(email)?;
    let Some(record) = auth.accounts().find_user_by_email(&email).await? else {
        bail!("no account with the email {email}");
    };
    let scopes = Scope::parse_list(scopes).map_err(anyhow::Error::msg)?;
    // the operator acts as the account would when signed in
    let principal = Principal {
        user_id: record.user.id,
        role: record.user.role,
        scopes: match record.user.role {
            Role::Admin => vec![Scope::Read, Scope::Write, Scope::Admin],
            Role::Member => vec![Scope::Read, Scope::Write],
        },
        credential: Credential::Gateway { api_key: false },
    };
    let (key, secret) = auth
        .create_api_key(
            &principal,
            name,
            scopes,
            &RequestContext {
                ip: None,
                user_agent: Some("vidsight CLI".into()),
            },
        )
        .await?;
    eprintln!(
        "created API key {} ({}) for {email}, scopes {}; the key is shown once:",
        key.id,
        key.prefix,
        Scope::join(&key.scopes)
    );
    println!("{secret}");
    Ok(())
}
