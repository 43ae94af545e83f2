//! Who made an authenticated request, as the services see it: the HTTP
//! layer ([`crate::api::auth`]) establishes it from the request signature,
//! and the services decide what that party and member may do, without
//! knowing how the request arrived.

use sealdrop_proto::ids::{MemberName, PartyId};
use sealdrop_proto::keys::NoteVerifierKey;

/// Who made an authenticated request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's party.
    pub party: PartyId,
    /// The member whose key signed the request.
    pub member: MemberName,
    /// That member's signing key in the current directory: the only key the
    /// hub trusts for the caller's manifests and receipts.
    pub key: NoteVerifierKey,
}
