//! E-mail over SMTP (lettre with rustls): STARTTLS, implicit TLS or, for a
//! server on the same machine, none.

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::alerts::channels::channel_config::{ChannelConfig, EmailSecurity};
use crate::alerts::channels::{HTTP_TIMEOUT, message};
use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// Sends one e-mail to every recipient of the channel.
#[derive(Debug)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Email {
    /// The e-mail channel `config` describes; any other variant, a bad
    /// address or no recipient is a [`NotifyError::Config`].
    pub fn new(config: &ChannelConfig) -> Result<Self, NotifyError> {
        let ChannelConfig::Email {
            host,
            port,
            security,
            username,
            password,
            from,
            to,
        } = config
        else {
            return Err(NotifyError::Config(format!(
                "{} is not an email channel",
                config.kind()
            )));
        };
        let from = parse_mailbox("from", from)?;
        let to = to
            .iter()
            .map(|a| parse_mailbox("to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(NotifyError::Config(
                "the email channel has no recipient in to".into(),
            ));
        }
        let credentials = match (username, password) {
            (Some(user), password) => Some(Credentials::new(
                user.clone(),
                password.clone().unwrap_or_default(),
            )),
            (None, Some(_)) => {
                return Err(NotifyError::Config(
                    "an SMTP password needs a username".into(),
                ));
            }
            (None, None) => None,
        };
        Ok(Self {
            transport: transport(host, *port, *security, credentials)?,
            from,
            to,
        })
    }
}

fn parse_mailbox(field: &str, text: &str) -> Result<Mailbox, NotifyError> {
    text.parse()
        .map_err(|e| NotifyError::Config(format!("{field} {text:?} is not an e-mail address: {e}")))
}

/// The SMTP transport for `security`: STARTTLS required, TLS from the first
/// byte (both checking the server's certificate for `host`), or plain.
pub fn transport(
    host: &str,
    port: u16,
    security: EmailSecurity,
    credentials: Option<Credentials>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    let host = host.trim();
    if host.is_empty() {
        return Err(NotifyError::Config("the email channel has no host".into()));
    }
    let tls_error = |e: lettre::transport::smtp::Error| {
        NotifyError::Config(format!("cannot set up TLS for {host}: {e}"))
    };
    let builder = match security {
        EmailSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?
        }
        EmailSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?
        }
        EmailSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
    };
    let mut builder = builder.port(port).timeout(Some(HTTP_TIMEOUT));
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    Ok(builder.build())
}

#[async_trait]
impl Notifier for Email {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(message::title(notification))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let mut body = message::lines(notification).join("\n");
        body.push('\n');
        let email = builder
            .body(body)
            .map_err(|e| NotifyError::Config(format!("cannot build the e-mail: {e}")))?;
        self.transport
            .send(email)
            .await
            .map(drop)
            .map_err(|e| match e.status() {
                Some(code) => NotifyError::Refused {
                    status: u16::from(code),
                    body: e.to_string(),
                },
                None => NotifyError::Unreachable(e.to_string()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debug(security: EmailSecurity, port: u16) -> String {
        format!(
            "{:?}",
            transport("smtp.example.net", port, security, None).unwrap()
        )
    }

    #[test]
    fn each_security_builds_its_lettre_transport() {
        let starttls = debug(EmailSecurity::Starttls, 587);
        assert!(starttls.contains("tls: Required"), "{starttls}");
        assert!(starttls.contains("port: 587"), "{starttls}");
        let tls = debug(EmailSecurity::Tls, 465);
        assert!(tls.contains("tls: Wrapper"), "{tls}");
        assert!(tls.contains("port: 465"), "{tls}");
        let none = debug(EmailSecurity::None, 25);
        assert!(none.contains("tls: None"), "{none}");
    }

    #[test]
    fn bad_addresses_and_no_recipients_are_config_errors() {
        let config = |from: &str, to: Vec<String>| ChannelConfig::Email {
            host: "smtp.example.net".into(),
            port: 587,
            security: EmailSecurity::Starttls,
            username: None,
            password: None,
            from: from.into(),
            to,
        };
        assert!(matches!(
            Email::new(&config("not an address", vec!["a@b.c".into()])),
            Err(NotifyError::Config(_))
        ));
        assert!(matches!(
            Email::new(&config("a@b.c", vec![])),
            Err(NotifyError::Config(_))
        ));
        assert!(Email::new(&config("Tailmon <a@b.c>", vec!["x@y.z".into()])).is_ok());
    }
}
