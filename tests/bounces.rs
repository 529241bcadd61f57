//! Issue 18, item 4: bounces and complaints. SES events (through the ses-events handler)
//! make an address undeliverable; the mailer then sends it nothing while the request still
//! answers 202; a password login by its member lifts it. Real handlers, DynamoDB Local and
//! the SES sink.

use contact_auth::adapters::dynamo::keys;
use contact_auth::domain::email::parse_email;
use contact_auth::handlers::mailer::Outcome;
use contact_auth::handlers::ses_events::SnsEvent;
use contact_auth::ports::{Contacts, Suppressions};
use contact_auth::routes::Route;
use serde_json::{json, Value};
use testkit::app::TestApp;
use testkit::fixtures;

use crate::crowd::{call, link_request, mail_outcomes};
use crate::{ensure, fresh, init, login_event, mails_to, record_secret};

/// An SNS event carrying one SES event record for `to`.
fn ses_event(event_type: &str, to: &str, bounce_type: &str) -> Result<SnsEvent, String> {
    let record = match event_type {
        "Bounce" => json!({"eventType": "Bounce", "bounce": {"bounceType": bounce_type,
            "bouncedRecipients": [{"emailAddress": to}]}, "mail": {"destination": [to]}}),
        _ => json!({"eventType": "Complaint", "complaint": {
            "complainedRecipients": [{"emailAddress": to}]}, "mail": {"destination": [to]}}),
    };
    serde_json::from_value(json!({"Records": [{"Sns": {"Message": record.to_string()}}]}))
        .map_err(|e| e.to_string())
}

async fn deliver(app: &TestApp, event: SnsEvent) -> Result<usize, String> {
    Ok(
        contact_auth::runtime::handle_ses_events(&app.store_app(), event)
            .await
            .map_err(|e| e.to_string())?
            .suppressed,
    )
}

async fn suppressed(app: &TestApp, email: &str) -> Result<bool, String> {
    let key = parse_email(email).map_err(|_| "bad address")?.key;
    Ok(app
        .store
        .suppressed(&key)
        .await
        .map_err(|e| e.to_string())?
        .is_some())
}

/// The profile's `mail_suppressed_at` flag of the member with `email`.
async fn flagged(app: &TestApp, email: &str) -> Result<bool, String> {
    let key = parse_email(email).map_err(|_| "bad address")?.key;
    let store = &app.store;
    let id = store
        .contact_id_by_email(&key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contact")?;
    let contact = store
        .contact(&id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no profile")?;
    Ok(contact.mail_suppressed_at.is_some())
}

/// The newest-link pointers (MAGICLATEST#) and what they point at.
async fn newest_pointers(app: &TestApp) -> Vec<String> {
    crate::snapshot(&app.store)
        .await
        .into_iter()
        .filter(|((pk, _), _)| pk.starts_with(&keys::magic_latest("").0))
        .map(|(k, v)| format!("{k:?} {v:?}"))
        .collect()
}

/// A sign-in request by `email` (202) through the mailer: the job's outcome and how many
/// mails reached the sink for `email`.
async fn sign_in_mail(
    app: &TestApp,
    ses: &str,
    route: Route,
    email: &str,
) -> Result<(Outcome, usize), String> {
    let before = mails_to(ses, email)?.len();
    let (status, _) = call(app, route, &link_request(route, email, "198.51.100.7")?).await?;
    ensure(status == 202, || format!("{route:?} answered {status}"))?;
    one_job(app, ses, email, before).await
}

/// The table's one mail job through the mailer: its outcome, and how many mails reached
/// the sink for `email` beyond the `before` it had.
async fn one_job(
    app: &TestApp,
    ses: &str,
    email: &str,
    before: usize,
) -> Result<(Outcome, usize), String> {
    let outcomes = mail_outcomes(app).await?;
    ensure(outcomes.len() == 1, || format!("jobs: {outcomes:?}"))?;
    Ok((outcomes[0], mails_to(ses, email)?.len() - before))
}

/// A permanent bounce: the member's sign-in mail is not sent (202 all the same), and a
/// failed login keeps it so; a password login lifts it and the next mail goes. A complaint
/// about an address without an account stops its registration mail. A transient bounce
/// changes nothing.
pub async fn bounced_addresses_get_no_mail_until_a_password_login() -> Result<(), String> {
    let ses = init()?;
    let app = fresh(&Value::Null).await;
    let id = contact_auth::domain::secret::new_id();
    let member = format!("bounced-{id}@example.com");
    let other = format!("full-mailbox-{id}@example.com");
    let stranger = format!("complainer-{id}@example.com");
    for e in [&member, &other, &stranger] {
        record_secret(e);
    }
    let password = "violet-kettle-harbour-42";
    let steps = fixtures::parse_steps(&json!([
        {"op": "session", "email": member},
        {"op": "password", "password": password},
        {"op": "session", "email": other},
    ]))?;
    for s in fixtures::setup(&app, &steps).await?.secrets {
        record_secret(&s);
    }
    mail_outcomes(&app).await?; // the setup's password notice
                                // Past the setup's per-address cooldown (its sign-ins were link requests too).
    let t0 = app.now();
    let app = app.at(t0 + 120);

    // SES says: the member's mailbox does not exist (as SES spells it: another case, a
    // display name); the other member's is full (transient); the stranger complained.
    let spelled = format!("Member <{}>", member.to_uppercase());
    ensure(
        deliver(&app, ses_event("Bounce", &spelled, "Permanent")?).await? == 1,
        || "a permanent bounce suppressed nothing".into(),
    )?;
    ensure(
        deliver(&app, ses_event("Bounce", &other, "Transient")?).await? == 0,
        || "a transient bounce suppressed".into(),
    )?;
    ensure(
        deliver(&app, ses_event("Complaint", &stranger, "")?).await? == 1,
        || "a complaint suppressed nothing".into(),
    )?;
    ensure(
        suppressed(&app, &member).await? && flagged(&app, &member).await?,
        || "the bounce did not suppress the address and flag its member".into(),
    )?;
    ensure(!suppressed(&app, &other).await?, || {
        "a transient bounce suppressed the address".into()
    })?;

    // No mail to the bounced member nor to the complainer; the full mailbox still gets one.
    let pointers_before = newest_pointers(&app).await;
    let (outcome, mails) = sign_in_mail(&app, &ses, Route::Magic, &member).await?;
    ensure(outcome == Outcome::Suppressed && mails == 0, || {
        format!("bounced member: {outcome:?}, {mails} mails")
    })?;
    // The unsent link never became the newest (the previous one keeps working).
    ensure(newest_pointers(&app).await == pointers_before, || {
        "an unsent link became the newest".into()
    })?;
    let (outcome, mails) = sign_in_mail(&app, &ses, Route::Register, &stranger).await?;
    ensure(outcome == Outcome::Suppressed && mails == 0, || {
        format!("complainer: {outcome:?}, {mails} mails")
    })?;
    let (outcome, mails) = sign_in_mail(&app, &ses, Route::Magic, &other).await?;
    ensure(matches!(outcome, Outcome::Sent(_)) && mails == 1, || {
        format!("full mailbox: {outcome:?}, {mails} mails")
    })?;

    // A wrong password lifts nothing.
    let resp = app
        .handle(
            Route::Login,
            fixtures::request(&login_event(&member, "not-the-password", "member-academy"))?,
        )
        .await;
    ensure(resp.status() == 401, || {
        format!("wrong password: {}", resp.status())
    })?;
    ensure(suppressed(&app, &member).await?, || {
        "a failed login lifted the suppression".into()
    })?;

    // The member logs in with the password: lifted, and the next link is mailed.
    let resp = app
        .handle(
            Route::Login,
            fixtures::request(&login_event(&member, password, "member-academy"))?,
        )
        .await;
    ensure(resp.status() == 200, || format!("login: {}", resp.status()))?;
    ensure(
        !suppressed(&app, &member).await? && !flagged(&app, &member).await?,
        || "a password login did not lift the suppression".into(),
    )?;
    // The login's new-sign-in check (its device is the one the member signed in on).
    let checked = mail_outcomes(&app).await?;
    ensure(checked == [Outcome::Nothing], || {
        format!("the login's new-sign-in check: {checked:?}")
    })?;
    let app = app.at(t0 + 240);
    let (outcome, mails) = sign_in_mail(&app, &ses, Route::Magic, &member).await?;
    ensure(matches!(outcome, Outcome::Sent(_)) && mails == 1, || {
        format!("after the login: {outcome:?}, {mails} mails")
    })?;
    // The complainer is still suppressed (no account, nobody to lift it but an operator).
    ensure(suppressed(&app, &stranger).await?, || {
        "the complaint's suppression went away".into()
    })?;
    // The operator lifts it (`contact-auth-admin suppression --lift`: no contact to flag);
    // the next registration mail goes.
    let key = parse_email(&stranger).map_err(|_| "bad address")?.key;
    app.store
        .lift_suppression(&key, None)
        .await
        .map_err(|e| e.to_string())?;
    let (outcome, mails) = sign_in_mail(&app, &ses, Route::Register, &stranger).await?;
    ensure(matches!(outcome, Outcome::Sent(_)) && mails == 1, || {
        format!("after the operator's lift: {outcome:?}, {mails} mails")
    })
}

/// A password-changed notice for the member with `email` (the demo team's), through the
/// mailer: the job's outcome and how many mails reached the sink.
async fn notice(app: &TestApp, ses: &str, email: &str) -> Result<(Outcome, usize), String> {
    use contact_auth::domain::ids::TeamId;
    use contact_auth::domain::model::{JobPurpose, MailJob};
    use contact_auth::ports::{Enqueued, MailJobs};
    let key = parse_email(email).map_err(|_| "bad address")?.key;
    let contact = app
        .store
        .contact_id_by_email(&key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contact")?;
    let job = MailJob {
        job_id: contact_auth::domain::secret::new_id(),
        purpose: JobPurpose::PasswordChangeNotice,
        slug: None,
        team_id: Some(TeamId::from_stored(testkit::seed::DEMO_TEAM)),
        email: String::new(),
        email_key: contact_auth::domain::email::EmailKey::from_stored(String::new()),
        redirect_url: None,
        created_at: app.now(),
        contact_id: Some(contact),
        change_id: None,
        pw_version: None,
        code_challenge: None,
        source_ip: None,
        locale: None,
        accept_language: None,
    };
    let queued = app.store.enqueue_job(&job, &[], app.now()).await;
    ensure(matches!(queued, Ok(Enqueued::Queued)), || {
        format!("enqueue: {queued:?}")
    })?;
    let before = mails_to(ses, email)?.len();
    one_job(app, ses, email, before).await
}

/// Security notices still reach a member who complained (and the complaint flags their
/// profile, so a password login lifts it), but never an address that bounced.
pub async fn security_notices_reach_a_complainer_not_a_bounced_address() -> Result<(), String> {
    let ses = init()?;
    let app = fresh(&Value::Null).await;
    let id = contact_auth::domain::secret::new_id();
    let complainer = format!("complained-{id}@example.com");
    let gone = format!("gone-{id}@example.com");
    for e in [&complainer, &gone] {
        record_secret(e);
    }
    let steps = fixtures::parse_steps(&json!([
        {"op": "session", "email": complainer},
        {"op": "session", "email": gone},
    ]))?;
    for s in fixtures::setup(&app, &steps).await?.secrets {
        record_secret(&s);
    }
    mail_outcomes(&app).await?;
    ensure(
        deliver(&app, ses_event("Complaint", &complainer, "")?).await? == 1,
        || "the complaint suppressed nothing".into(),
    )?;
    ensure(flagged(&app, &complainer).await?, || {
        "a complaint did not flag its member's profile".into()
    })?;
    ensure(
        deliver(&app, ses_event("Bounce", &gone, "Permanent")?).await? == 1,
        || "the bounce suppressed nothing".into(),
    )?;
    let (outcome, mails) = notice(&app, &ses, &complainer).await?;
    ensure(outcome == Outcome::Notice && mails == 1, || {
        format!("complainer's password notice: {outcome:?}, {mails} mails")
    })?;
    let (outcome, mails) = notice(&app, &ses, &gone).await?;
    ensure(outcome == Outcome::Suppressed && mails == 0, || {
        format!("bounced address's password notice: {outcome:?}, {mails} mails")
    })?;
    // Sign-in mail to the complainer does not go.
    let app = app.at(app.now() + 120);
    let (outcome, mails) = sign_in_mail(&app, &ses, Route::Magic, &complainer).await?;
    ensure(outcome == Outcome::Suppressed && mails == 0, || {
        format!("complainer's sign-in mail: {outcome:?}, {mails} mails")
    })
}

/// The suppression writes refuse a stale read: SES reports an address the contact has
/// left (the email index still names the contact, the profile has another address) — its
/// profile is not flagged; lifting for a contact that is gone writes no profile.
pub async fn suppression_writes_refuse_a_stale_read() -> Result<(), String> {
    use contact_auth::adapters::dynamo::codec::email_item;
    use contact_auth::domain::ids::ContactId;
    init()?;
    let app = fresh(&Value::Null).await;
    let id = contact_auth::domain::secret::new_id();
    let member = format!("moved-{id}@example.com");
    let old = format!("old-{id}@example.com");
    record_secret(&member);
    record_secret(&old);
    let steps = fixtures::parse_steps(&json!([{"op": "session", "email": member}]))?;
    for s in fixtures::setup(&app, &steps).await?.secrets {
        record_secret(&s);
    }
    let key = |e: &str| {
        parse_email(e)
            .map(|e| e.key)
            .map_err(|_| "bad address".to_string())
    };
    let contact = app
        .store
        .contact_id_by_email(&key(&member)?)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no contact")?;
    // The index still names the contact under the address it left.
    app.store
        .client()
        .put_item()
        .table_name(app.store.table())
        .set_item(Some(email_item(&contact, &key(&old)?)))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure(
        deliver(&app, ses_event("Bounce", &old, "Permanent")?).await? == 1,
        || "the bounce suppressed nothing".into(),
    )?;
    ensure(!flagged(&app, &member).await?, || {
        "a bounce of an address the contact left flagged its profile".into()
    })?;
    // A lift for a contact that does not exist creates no profile.
    let ghost = ContactId::from_stored(format!("ghost-{id}"));
    app.store
        .lift_suppression(&key(&old)?, Some(&ghost))
        .await
        .map_err(|e| e.to_string())?;
    let created = crate::snapshot(&app.store)
        .await
        .contains_key(&keys::profile(&ghost));
    ensure(!created, || {
        "a lift wrote a profile for a contact that is gone".into()
    })
}
