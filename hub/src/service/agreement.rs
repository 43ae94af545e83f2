//! The sharing agreement's rules as the hub serves them: the decision is
//! `sealdrop_proto::policy::agreement_allows` (the client and the offline
//! audit call the same function), turned here into the hub's codes and
//! messages.

use jiff::Timestamp;
use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::policy::{self, DropRefusal, NotInForce};

use super::DropError;

/// The sharing agreement's rules for moving data between parties now: the
/// agreement is in the hub's current directory, in force at `now`, and
/// every one of `parties` (each with the role it plays, for the message:
/// "your party", "recipient", "sender") is a party to it. Create, commit
/// and fetch all apply it, so an agreement that ends, or a directory version
/// that removes it or a party from it, stops all traffic under it at once.
pub fn agreement_allows<'d>(
    dir: &'d Directory,
    agreement: &str,
    parties: &[(&str, &PartyId)],
    now: Timestamp,
) -> Result<&'d Agreement, DropError> {
    policy::agreement_allows(dir, agreement, parties.iter().copied(), now).map_err(|refusal| match refusal {
        DropRefusal::UnknownAgreement => DropError::new(
            ErrorCode::UnknownAgreement,
            format!(
                "agreement `{agreement}` is not in the hub's directory (serial {}): it was never made or has been \
                 withdrawn; ask the coordinator",
                dir.serial
            ),
        ),
        DropRefusal::NotInForce(NotInForce::NotYet { valid_from }) => DropError::new(
            ErrorCode::AgreementNotInForce,
            format!("agreement `{agreement}` is not in force until {valid_from}: nothing may move under it before then"),
        ),
        DropRefusal::NotInForce(NotInForce::Ended { valid_until }) => DropError::new(
            ErrorCode::AgreementNotInForce,
            format!(
                "agreement `{agreement}` ended at {valid_until}: nothing may be sent, committed or fetched under it any more"
            ),
        ),
        DropRefusal::NotInAgreement { role, party } => DropError::new(
            ErrorCode::NotInAgreement,
            format!("{role} `{party}` is not a party to agreement `{agreement}` (directory serial {})", dir.serial),
        ),
    })
}
