//! What was sent and what became of it: `status` (the hub's view, checked
//! against its log), `recall` (take a drop back) and `journal` (this
//! machine's own record, no hub needed).

use std::io::Write;

use clap::Args;

use super::parse_since;
use crate::context::Settings;
use crate::error::Result;

// `sealdrop status`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    /// One drop.
    id: Option<String>,
    /// Only drops created on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only drops under this agreement.
    #[arg(long)]
    agreement: Option<String>,
    /// Print a JSON array (the hub's fields, plus each recipient's `outcome` and the drop's `files`).
    #[arg(long)]
    json: bool,
}

impl StatusArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        let StatusArgs { id, since, agreement, json } = self;
        let since = since.map(|s| parse_since(&s)).transpose()?;
        crate::status::run(settings, &crate::status::StatusRequest { id, since, agreement }, json, out)
    }
}

// `sealdrop recall`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct RecallArgs {
    /// The drop id.
    id: String,
    /// Print the hub's answer and the receipt path as JSON.
    #[arg(long)]
    json: bool,
}

impl RecallArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        crate::recall::run(settings, &self.id, self.json, out)
    }
}

// `sealdrop journal`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct JournalArgs {
    /// Only entries on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Only drops under this agreement.
    #[arg(long)]
    agreement: Option<String>,
    /// Only drops sent to or received from this party (its id).
    #[arg(long)]
    party: Option<String>,
    /// Also list the hub log checkpoints this client verified.
    #[arg(long)]
    checkpoints: bool,
    /// Print the matching entries as a JSON array.
    #[arg(long)]
    json: bool,
}

impl JournalArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        let JournalArgs { since, agreement, party, checkpoints, json } = self;
        let since = since.map(|s| parse_since(&s)).transpose()?;
        let party = party.map(|p| crate::suggest::journal_party(settings, &p)).transpose()?;
        let filter = crate::journal::Filter { since, agreement, party, checkpoints };
        crate::journal::run(&settings.state_dir, &filter, json, out)
    }
}
