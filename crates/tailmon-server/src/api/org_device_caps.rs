//! The hook that hands the organisations' device caps
//! ([`Credentials::device_caps`]) to ingest: called when the server is
//! built, at each reload, and when the owner changes an organisation's
//! limits or removes one.

use crate::Ingest;
use crate::auth::Credentials;

/// Gives ingest the device cap of each organisation that sets one
/// (`credentials` is `None` with authentication off: no organisation has
/// a cap of its own).
pub(crate) fn apply(ingest: &Ingest, credentials: Option<&Credentials>) {
    let caps = credentials
        .map(Credentials::device_caps)
        .unwrap_or_default();
    // TODO(issue 18, lead): `ingest.set_device_caps(caps)` once ingest
    // counts devices per organisation.
    let _ = (ingest, caps);
}
