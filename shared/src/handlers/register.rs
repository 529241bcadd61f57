//! `POST /register`: asks for a registration (or join, or sign-in when the contact is already a member) by mail. Validates, counts and enqueues one
//! mail job (`flows::link_request`); the mailer decides what is sent. 202 either way.

use lambda_http::Request;

use crate::app::App;
use crate::domain::model::JobPurpose;
use crate::edge::{HandlerResult, RequestMeta};
use crate::flows::link_request::request_link;
use crate::ports::{Directory, MailJobs};

pub async fn handle<S: Directory + MailJobs, K>(
    app: &App<S, K>,
    req: Request,
    meta: RequestMeta,
) -> HandlerResult {
    request_link(app, JobPurpose::Register, req, meta).await
}
