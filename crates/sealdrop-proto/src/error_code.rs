//! Every error code the hub serves and the client reports, defined once with
//! its HTTP status (for codes the hub serves) and the client's exit status.
//!
//! The strings are the wire format (`{"error":{"code":"..."}}`) and the
//! `error[code]` lines people and scripts read, so they never change; a new
//! code is a new variant. A hub may send a code this enum does not know (a
//! newer hub, or one that lies): callers keep the string as received and use
//! [`ErrorCode::from_wire`] only to recognise the ones they act on.

use std::fmt;
use std::str::FromStr;

// What each code's exit kind means for the process has its own module; the
// name stays reachable here, beside the codes that use it.
pub use crate::exit_kind::ExitKind;

/// Defines [`ErrorCode`] from one table, so a code's string, HTTP status and
/// exit kind are written in one row and cannot drift apart.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal => $status:expr, $kind:ident; )*) => {
        /// A stable error code. The codes the hub serves come first (their
        /// docs give the HTTP status served); then those of the hub
        /// binary's one-shot commands (`serve`'s start-up, `check-config`,
        /// `tls self-signed`), then the client's own, each alphabetically.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as written on the wire and in `error[code]` lines.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }

            /// The HTTP status the hub serves this code with; `None` for
            /// codes only the client or the hub binary reports.
            pub const fn http_status(self) -> Option<u16> {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// The kind (and so the exit status) of the client reporting
            /// this code itself. A refusal the client relays from the hub is
            /// always [`ExitKind::Refused`], whatever its code; codes only the
            /// hub serves are [`ExitKind::Refused`] here for the same reason.
            /// For the hub binary's own codes it is the hub's exit status
            /// (every one exits 1 today: [`ExitKind::Other`]).
            pub const fn exit_kind(self) -> ExitKind {
                match self {
                    $(ErrorCode::$variant => ExitKind::$kind,)*
                }
            }
        }
    };
}

// Each row: the variant, its string, the HTTP status the hub serves it with
// (`None`: the client's or the hub binary's own), and the exit kind.
error_codes! {
    /// Missing or malformed authentication headers (401).
    Unauthenticated = "unauthenticated" => Some(401), Refused;
    /// The request signature does not verify (401).
    BadSignature = "bad_signature" => Some(401), Refused;
    /// The signing key is not a member key in the hub's current directory (401).
    UnknownKey = "unknown_key" => Some(401), Refused;
    /// The request's time is more than 5 minutes from the hub's clock (401).
    StaleRequest = "stale_request" => Some(401), Refused;
    /// The request's nonce was used before (401).
    ReplayedNonce = "replayed_nonce" => Some(401), Refused;
    /// The caller's party may not see or change this (403).
    Forbidden = "forbidden" => Some(403), Refused;
    /// No such route or drop (404).
    NotFound = "not_found" => Some(404), Refused;
    /// The drop no longer exists on the hub (410).
    Gone = "gone" => Some(410), Refused;
    /// The body could not be parsed (400).
    BadRequest = "bad_request" => Some(400), Refused;
    /// A recipient is not a party in the directory (422).
    ///
    /// From the client: the send was stopped before asking the hub: the directory has no such party (exit 3).
    UnknownParty = "unknown_party" => Some(422), Input;
    /// The agreement does not exist (422).
    ///
    /// From the client: the send was stopped before asking the hub: the directory has no such agreement (exit 3).
    UnknownAgreement = "unknown_agreement" => Some(422), Input;
    /// A party is not a member of the agreement (422).
    ///
    /// From the client: the send was stopped before asking the hub: a party is not a member of the agreement (exit 3).
    NotInAgreement = "not_in_agreement" => Some(422), Input;
    /// The agreement is not in force now (422).
    ///
    /// From the client: the send was stopped before asking the hub: the agreement is not in force now (exit 3).
    AgreementNotInForce = "agreement_not_in_force" => Some(422), Input;
    /// The requested expiry is in the past or beyond the agreement's maximum (422).
    ///
    /// From the client: the send was stopped before asking the hub: `--expires` is in the past or beyond the agreement's maximum (exit 3).
    BadExpiry = "bad_expiry" => Some(422), Input;
    /// The agreement requires post-quantum keys and the drop is encrypted
    /// to another kind (422).
    ///
    /// From the client: the agreement requires post-quantum keys and a recipient's key is of another kind; ask the coordinator (exit 3).
    NotPostQuantum = "not_post_quantum" => Some(422), Input;
    /// The manifest is not signed by the sender or does not match the drop (422).
    ///
    /// From the client: a drop's manifest is not signed by its sender or does not match the drop; do not use it (exit 4).
    BadManifest = "bad_manifest" => Some(422), Verification;
    /// The ciphertext received differs from the manifest's hash or length (422).
    HashMismatch = "hash_mismatch" => Some(422), Refused;
    /// The ciphertext's age header does not hold exactly one recipient
    /// stanza per key the manifest lists in `encrypted_to`, or holds a
    /// stanza of another type (422; see [`crate::age_header`]).
    ///
    /// From the client: a downloaded drop's age header does not hold exactly the stanzas its manifest names (exit 4).
    HeaderMismatch = "header_mismatch" => Some(422), Verification;
    /// The receipt is not signed by the recipient or does not match the drop (422).
    BadReceipt = "bad_receipt" => Some(422), Refused;
    /// The drop is not in a state that allows this (409).
    Conflict = "conflict" => Some(409), Refused;
    /// A recall came after a recipient acknowledged the drop: that
    /// recipient has the data, and the message says who (409).
    RecallRefused = "recall_refused" => Some(409), Refused;
    /// The request is signed with a key the directory has revoked (401).
    ///
    /// From the client: the member's own key is revoked in the directory: ask the coordinator for a new one (exit 3).
    KeyRevoked = "key_revoked" => Some(401), Input;
    /// The directory is not signed by the hub's authority (422).
    ///
    /// From the client: the directory is not signed by the trusted authority; do not use it (exit 4).
    DirectoryBadSignature = "directory_bad_signature" => Some(422), Verification;
    /// The directory is inconsistent (422).
    ///
    /// From the client: the directory does not hold together; do not use it (exit 4; a coordinator's own unsigned directory file is bad input, exit 3).
    DirectoryInvalid = "directory_invalid" => Some(422), Verification;
    /// The directory's serial is not higher than the current one (409).
    ///
    /// From the client: the hub offers an older directory than one this client verified (exit 4).
    DirectoryRollback = "directory_rollback" => Some(409), Verification;
    /// A witness cosignature is not by one of the caller's party's witness
    /// keys, or does not verify over the checkpoint it names (422).
    BadCosignature = "bad_cosignature" => Some(422), Refused;
    /// A continued upload starts at a byte other than the number the hub
    /// holds (409); ask `GET /v1/drops/{id}/upload` and continue from there.
    UploadOffsetMismatch = "upload_offset_mismatch" => Some(409), Refused;
    /// A download's `Range` header is malformed, asks for more than one
    /// range, or starts at or beyond the end of the ciphertext (416); the
    /// response carries `Content-Range: bytes */TOTAL`. Download from byte 0.
    RangeNotSatisfiable = "bad_range" => Some(416), Refused;
    /// The body is larger than the hub accepts (413).
    PayloadTooLarge = "payload_too_large" => Some(413), Refused;
    /// The request body stopped arriving for longer than the hub waits
    /// (408). What arrived of an upload is kept: continue it from the
    /// byte `GET /v1/drops/{id}/upload` reports.
    RequestTimeout = "request_timeout" => Some(408), Refused;
    /// The hub's disk is full (507).
    InsufficientStorage = "insufficient_storage" => Some(507), Refused;
    /// Something failed inside the hub (500).
    ///
    /// From the client: something failed inside the client, e.g. a worker thread stopped (exit 1; a result that could not be written as JSON, exit 3).
    Internal = "internal" => Some(500), Other;
    /// Too many requests from the caller's address or party (429); the
    /// answer's `Retry-After` header says how many seconds to wait.
    RateLimited = "rate_limited" => Some(429), Refused;
    /// An acknowledgement from a party the transfer log holds no download
    /// of the drop by (409): a receipt says the party has the data, so it
    /// must download the drop first.
    NotDownloaded = "not_downloaded" => Some(409), Refused;
    /// The caller's party has already made the most downloads of this drop
    /// the hub serves one party (`sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY`,
    /// each one a permanent log entry) (409): ask the sender to send it again.
    DownloadLimit = "download_limit" => Some(409), Refused;
    /// The upload would take the caller's party past the ciphertext bytes
    /// the hub holds for one party (`max_held_bytes_per_party`), stored and
    /// uploading together (507). Nothing already stored is touched: wait
    /// for recipients to fetch (or recall) earlier drops.
    QuotaHeldBytes = "quota_held_bytes" => Some(507), Refused;
    /// The caller's party already has as many uploads open as the hub allows
    /// (`max_open_uploads_per_party`) (429): finish or commit one first.
    QuotaOpenUploads = "quota_open_uploads" => Some(429), Refused;
    /// The hub is holding as many unauthenticated request bodies in memory
    /// as it allows (503); `Retry-After` says when to try again.
    HubBusy = "hub_busy" => Some(503), Refused;
    /// The request must declare its body's length in `Content-Length` (411).
    LengthRequired = "length_required" => Some(411), Refused;
    /// `PUT /v1/drops/{id}`: a drop with this id exists already and its
    /// committed manifest is not byte-equal to this request's (409). A
    /// re-run of the same send is answered with the committed drop instead.
    DropExists = "drop_exists" => Some(409), Refused;
    /// `PUT /v1/drops/{id}`: the ciphertext is larger than this hub takes
    /// in one request (`max_single_request_bytes`) (413): send it with the
    /// three steps (create, upload, commit), which also resume.
    TooLargeForOneRequest = "too_large_for_one_request" => Some(413), Refused;
    /// `sealdrop-hub`: the data directory is not an initialised hub's, or
    /// its log key cannot be read: give the right `--data`, or run
    /// `sealdrop-hub init` there first (exit 1).
    DataDir = "data_dir" => None, Other;
    /// `sealdrop-hub serve`: another `serve` holds the data directory's
    /// lock: stop that one first, or give this one another `--data` (exit 1).
    DataDirInUse = "data_dir_in_use" => None, Other;
    /// `sealdrop-hub serve`: the data directory's lock file cannot be
    /// opened or locked: check the directory's owner and permissions (exit 1).
    DataDirLock = "data_dir_lock" => None, Other;
    /// `sealdrop-hub check-config`: the object store that `blobs` names
    /// cannot be used (unreachable, no such bucket, refused credentials):
    /// check the bucket and the `AWS_*` settings (exit 1).
    BlobStore = "blob_store" => None, Other;
    /// `sealdrop-hub tls self-signed`: the certificate or key file exists
    /// already and is not overwritten: choose another file or remove it (exit 1).
    FileExists = "file_exists" => None, Other;
    /// `sealdrop-hub serve`: the hub cannot listen on its address or its
    /// metrics address, often because another hub runs there: stop it or
    /// choose another address (exit 1).
    ListenFailed = "listen_failed" => None, Other;
    /// `sealdrop-hub migrate`: copying into the new stores failed (the
    /// database or the object store refused or could not be reached, or
    /// the data directory could not be read); the message says which. The
    /// source is untouched: empty the targets and run it again (exit 1).
    MigrateFailed = "migrate_failed" => None, Other;
    /// `sealdrop-hub migrate`: the data directory cannot be moved as it is:
    /// its database is of another hub version, or what it holds is
    /// inconsistent (a committed drop without its ciphertext, a ciphertext
    /// that does not match its drop's hash, a transfer log that does not
    /// verify); the message says which (exit 1).
    MigrateSource = "migrate_source" => None, Other;
    /// `sealdrop-hub migrate`: the target database already holds a hub, or
    /// the bucket prefix already holds objects; migrate never writes into
    /// either: give an empty database and prefix (exit 1).
    MigrateTargetNotEmpty = "migrate_target_not_empty" => None, Other;
    /// `sealdrop-hub migrate`: the copy did not verify (a row, the transfer
    /// log or a ciphertext differs from the source); do not serve from it:
    /// empty the targets and run it again (exit 1).
    MigrateVerifyFailed = "migrate_verify_failed" => None, Other;
    /// `sealdrop-hub`: the TLS certificate has expired: renew it and
    /// restart the hub (exit 1).
    TlsCertExpired = "tls_cert_expired" => None, Other;
    /// `sealdrop-hub`: the TLS certificate is not a valid PEM or X.509
    /// certificate, or holds none: give the server certificate first, then
    /// its intermediates (exit 1).
    TlsCertInvalid = "tls_cert_invalid" => None, Other;
    /// `sealdrop-hub`: the TLS certificate is a CA certificate (CA:TRUE),
    /// which clients refuse as a server's own: make an end-entity one, e.g.
    /// with `sealdrop-hub tls self-signed` (exit 1).
    TlsCertIsCa = "tls_cert_is_ca" => None, Other;
    /// `sealdrop-hub tls self-signed`: the certificate could not be made;
    /// the message says why (exit 1).
    TlsCertMake = "tls_cert_make" => None, Other;
    /// `sealdrop-hub`: the TLS certificate has no subjectAltName, so it
    /// names no host clients could match: make one with the hub's names (exit 1).
    TlsCertNoSan = "tls_cert_no_san" => None, Other;
    /// `sealdrop-hub`: the TLS certificate is not valid yet: check this
    /// machine's clock, or wait (exit 1).
    TlsCertNotYetValid = "tls_cert_not_yet_valid" => None, Other;
    /// `sealdrop-hub`: the TLS certificate's extended key usage lacks
    /// serverAuth, so clients refuse it for a server: make one without that
    /// limit (exit 1).
    TlsCertWrongUsage = "tls_cert_wrong_usage" => None, Other;
    /// `sealdrop-hub`: the TLS certificate or key file cannot be read:
    /// check the path and its permissions (exit 1).
    TlsFileUnreadable = "tls_file_unreadable" => None, Other;
    /// `sealdrop-hub`: the TLS key file holds no usable PEM private key:
    /// give the key that belongs to the certificate (exit 1).
    TlsKeyInvalid = "tls_key_invalid" => None, Other;
    /// `sealdrop-hub`: the TLS key does not belong to the certificate:
    /// give the matching pair (exit 1).
    TlsKeyMismatch = "tls_key_mismatch" => None, Other;
    /// `sealdrop-hub tls self-signed`: a `--host` or `--days` value is not
    /// allowed, or no `--host` was given; the message says what to give
    /// (exit 1, as every `sealdrop-hub` failure).
    ///
    /// The client's own `error[usage]` lines (a bad command line) are the
    /// same code, so the same variant, but are printed by its argument
    /// parser, not built from this enum, and exit 2 (its usage status,
    /// which no [`ExitKind`] names).
    Usage = "usage" => None, Other;
    /// `sealdrop-hub tls self-signed`: the certificate or key file cannot be
    /// written: choose a folder you can write to (exit 1).
    WriteFailed = "write_failed" => None, Other;
    /// More than one agreement covers the recipients: name one with `--agreement`.
    AgreementAmbiguous = "agreement_ambiguous" => None, Input;
    /// A column name matches more than one column of the table: name it exactly.
    AmbiguousColumn = "ambiguous_column" => None, Input;
    /// The transfer log or its evidence did not verify in an audit: report it to the coordinator.
    AuditFailed = "audit_failed" => None, Verification;
    /// `audit verify --strict`: the log verified, but with warnings, each named in the message.
    AuditWarnings = "audit_warnings" => None, Warnings;
    /// The authority key given or stored is not a valid authority key.
    AuthorityInvalid = "authority_invalid" => None, Input;
    /// A received archive does not hold together: do not use it.
    BadArchive = "bad_archive" => None, Verification;
    /// A public key card cannot be read or does not verify.
    BadCard = "bad_card" => None, Input;
    /// A date option is not a date the client understands.
    BadDate = "bad_date" => None, Input;
    /// A drop id on the command line is not a valid drop id.
    BadDropId = "bad_drop_id" => None, Input;
    /// An input file is not in an encoding the client can read.
    BadEncoding = "bad_encoding" => None, Input;
    /// A file name cannot be carried in a drop or placed safely.
    BadFileName = "bad_file_name" => None, Input;
    /// The hub CA certificate file cannot be read or parsed.
    BadHubCa = "bad_hub_ca" => None, Input;
    /// The hub URL is not a valid URL.
    BadHubUrl = "bad_hub_url" => None, Input;
    /// A key or member name is not one the directory allows.
    BadKeyName = "bad_key_name" => None, Input;
    /// A command-line option's value is not allowed, or options do not go together.
    BadOption = "bad_option" => None, Input;
    /// An output path cannot be used, e.g. a secret key file named `.pub`.
    BadOutput = "bad_output" => None, Input;
    /// The reference list of parties `directory new` reads (a CSV like
    /// `keys-example/london-local-authorities.csv`) cannot be read.
    BadReference = "bad_reference" => None, Input;
    /// The hub's answer could not be read: it may be a proxy or a newer hub.
    BadResponse = "bad_response" => None, Other;
    /// A `sample` option's value is not allowed.
    BadSampleOption = "bad_sample_option" => None, Input;
    /// A time option is not a time the client understands.
    BadTime = "bad_time" => None, Input;
    /// A workbook cannot be read as a table.
    BadWorkbook = "bad_workbook" => None, Input;
    /// An evidence bundle does not verify: do not use it.
    BundleInvalid = "bundle_invalid" => None, Verification;
    /// An evidence bundle cannot be read.
    BundleUnreadable = "bundle_unreadable" => None, Input;
    /// An evidence bundle is signed for another authority than the one trusted.
    BundleWrongAuthority = "bundle_wrong_authority" => None, Verification;
    /// An evidence bundle's log is signed by another key than the one trusted.
    BundleWrongLogKey = "bundle_wrong_log_key" => None, Verification;
    /// The user declined a confirmation prompt; nothing was sent.
    Cancelled = "cancelled" => None, Other;
    /// The computer's clock is before 1970.
    Clock = "clock" => None, Other;
    /// The client's settings file cannot be read or holds a bad value.
    ConfigInvalid = "config_invalid" => None, Input;
    /// The command needs `--yes` when not run at a terminal.
    ConfirmationRequired = "confirmation_required" => None, Input;
    /// `demo` could not start or run its local hub.
    DemoFailed = "demo_failed" => None, Other;
    /// `demo` or `sample` was asked for, but the `sealdrop-demo` program is not installed.
    DemoNotInstalled = "demo_not_installed" => None, Other;
    /// The hub showed two different directories with the same serial: report it to the coordinator.
    DirectoryEquivocation = "directory_equivocation" => None, Verification;
    /// A download was cut off and could not be continued: run the command again.
    DownloadFailed = "download_failed" => None, Unreachable;
    /// Two files or members share a name where names must differ.
    DuplicateName = "duplicate_name" => None, Input;
    /// An input file is empty.
    EmptyFile = "empty_file" => None, Input;
    /// An input table has no rows.
    EmptyInput = "empty_input" => None, Input;
    /// Encrypting a file failed.
    EncryptFailed = "encrypt_failed" => None, Other;
    /// Another fetch is running on the same state folder.
    FetchInProgress = "fetch_in_progress" => None, Input;
    /// The HTTP client could not be set up (e.g. the TLS roots).
    HttpClient = "http_client" => None, Other;
    /// The hub could not be reached: check the network and the hub URL.
    HubUnreachable = "hub_unreachable" => None, Unreachable;
    /// The hub's TLS certificate is not trusted: check `hub_ca` and the URL.
    HubUntrusted = "hub_untrusted" => None, Unreachable;
    /// An input file changed while it was being sent or split: run the command again.
    InputChanged = "input_changed" => None, Input;
    /// The hub URL is plain `http://` to another machine: use `https://`.
    InsecureHubUrl = "insecure_hub_url" => None, Input;
    /// A send was stopped by a signal and withdrew the drops it had not committed (exit 130 or 143 as the signal's; the kind here is for the record).
    Interrupted = "interrupted" => None, Other;
    /// A local file could not be read or written; the message says what to do.
    Io = "io" => None, Other;
    /// A key file does not hold a valid key.
    KeyInvalid = "key_invalid" => None, Input;
    /// A secret key file may be read by others: make it private.
    KeyPermissions = "key_permissions" => None, Input;
    /// A member key file is encrypted to an age plugin, and that plugin's identity file is not configured or not usable.
    KeyPluginFailed = "key_plugin_failed" => None, Input;
    /// A member key file is encrypted to an age plugin that is not installed (`age-plugin-NAME` on `PATH`).
    KeyPluginMissing = "key_plugin_missing" => None, Input;
    /// A key file cannot be read.
    KeyUnreadable = "key_unreadable" => None, Input;
    /// A transfer log checkpoint is not signed by the log's key.
    LogBadCheckpoint = "log_bad_checkpoint" => None, Verification;
    /// A transfer log entry cannot be parsed or is not signed as it should be.
    LogBadEntry = "log_bad_entry" => None, Verification;
    /// A transfer log proof does not verify.
    LogBadProof = "log_bad_proof" => None, Verification;
    /// A transfer log tile does not match its checkpoint.
    LogBadTile = "log_bad_tile" => None, Verification;
    /// The transfer log is not consistent with the one this client saw before: report it.
    LogInconsistent = "log_inconsistent" => None, Verification;
    /// The transfer log's key is not the one this client trusted before.
    LogKeyChanged = "log_key_changed" => None, Verification;
    /// The transfer log key given or stored is not valid.
    LogKeyInvalid = "log_key_invalid" => None, Verification;
    /// A drop's event is not included in the transfer log.
    LogNotIncluded = "log_not_included" => None, Verification;
    /// The transfer log's origin is not the one trusted.
    LogOriginMismatch = "log_origin_mismatch" => None, Verification;
    /// The client's stored log state cannot be read.
    LogStateInvalid = "log_state_invalid" => None, Verification;
    /// The transfer log's entry does not say what the hub claimed.
    LogWrongEntry = "log_wrong_entry" => None, Verification;
    /// The member already has a key (a card) in the directory: one key a member.
    MemberExists = "member_exists" => None, Input;
    /// A row of a merged part does not match its header.
    MergeBadRow = "merge_bad_row" => None, Input;
    /// The column `merge` would add exists already.
    MergeColumnExists = "merge_column_exists" => None, Input;
    /// The parts being merged do not share one header.
    MergeHeadersDiffer = "merge_headers_differ" => None, Input;
    /// A part being merged is not UTF-8.
    MergeNotUtf8 = "merge_not_utf8" => None, Input;
    /// The merge output would be written inside a received drop's folder.
    MergeOutputInDrop = "merge_output_in_drop" => None, Input;
    /// One drop would be encrypted to post-quantum keys and keys of another kind, which the age spec forbids: send in separate drops.
    MixedKeyKinds = "mixed_key_kinds" => None, Input;
    /// No agreement covers the sender and the recipients.
    NoAgreement = "no_agreement" => None, Input;
    /// No authority key is configured: run `sealdrop init` or set one.
    NoAuthority = "no_authority" => None, Input;
    /// No public key cards were given.
    NoCards = "no_cards" => None, Input;
    /// No configuration folder can be found for this user.
    NoConfigDir = "no_config_dir" => None, Input;
    /// No hub URL is configured.
    NoHub = "no_hub" => None, Input;
    /// No key of this member is configured: run `sealdrop init`.
    NoIdentity = "no_identity" => None, Input;
    /// No output path was given where one is needed.
    NoOutput = "no_output" => None, Input;
    /// No files were given to send.
    NoPaths = "no_paths" => None, Input;
    /// No recipients were given.
    NoRecipients = "no_recipients" => None, Input;
    /// No state folder can be found for this user.
    NoStateDir = "no_state_dir" => None, Input;
    /// The table has no such column.
    NoSuchColumn = "no_such_column" => None, Input;
    /// The workbook has no such sheet.
    NoSuchSheet = "no_such_sheet" => None, Input;
    /// No witness key is configured for this party.
    NoWitnessKey = "no_witness_key" => None, Input;
    /// A drop is not encrypted to this member's key.
    NotEncryptedToYou = "not_encrypted_to_you" => None, Input;
    /// This member's own key is not in the signed directory: send its card
    /// (`sealdrop key show`) to the coordinator.
    NotInDirectory = "not_in_directory" => None, Input;
    /// An input file is not UTF-8.
    NotUtf8 = "not_utf8" => None, Input;
    /// No file is left to send after the checks.
    NothingToSend = "nothing_to_send" => None, Input;
    /// The `[notify]` config (or a `--notify-*` option) is not usable: a
    /// bad URL, address, file or event name. The message names the key.
    NotifyConfigInvalid = "notify_config_invalid" => None, Input;
    /// A notification could not be delivered (a hook failed or overran, a
    /// webhook or the SMTP relay refused or was unreachable).
    NotifyFailed = "notify_failed" => None, Other;
    /// A file in the watch folder's outbox is not in a folder that names its recipient: save it in `outbox/<party>/`.
    OutboxMisplaced = "outbox_misplaced" => None, Input;
    /// The output file exists already: choose another or give `--force`.
    OutputExists = "output_exists" => None, Input;
    /// A new passphrase is empty, not UTF-8, or its confirmation differs.
    PassphraseInvalid = "passphrase_invalid" => None, Input;
    /// A member key file is protected by a passphrase and no way to give it was found: no terminal, no `--passphrase-fd`, no credential.
    PassphraseRequired = "passphrase_required" => None, Input;
    /// The passphrase's file descriptor or credential file cannot be read.
    PassphraseUnreadable = "passphrase_unreadable" => None, Input;
    /// An input path does not exist.
    PathMissing = "path_missing" => None, Input;
    /// An age plugin (a hardware token's) refused or failed, e.g. a wrong PIN: the message is the plugin's; the drop stays waiting.
    PluginFailed = "plugin_failed" => None, Input;
    /// An age plugin asked for a PIN or an answer and there is no terminal to ask on: run the command on a terminal.
    PluginInputNeeded = "plugin_input_needed" => None, Input;
    /// `keygen --plugin-identity`: the recipient given is not the token's (a probe encrypted to it did not decrypt through the plugin).
    PluginKeyMismatch = "plugin_key_mismatch" => None, Input;
    /// A key is held by an age plugin that is not installed here (`age-plugin-<name>` on PATH): install it.
    PluginMissing = "plugin_missing" => None, Input;
    /// A file could not be read while uploading it.
    ReadFailed = "read_failed" => None, Other;
    /// A table row is longer than the client reads.
    RowTooLong = "row_too_long" => None, Input;
    /// A file secrets are written to cannot be made private (mode 0600).
    SecretFileNotPrivate = "secret_file_not_private" => None, Input;
    /// A file to send looks like a secret key: it is not sent.
    SecretKeyInDrop = "secret_key_in_drop" => None, Input;
    /// A secret would be written to a terminal: redirect it to a file.
    SecretToTerminal = "secret_to_terminal" => None, Input;
    /// A split sent some parts but not all: the message says which and what to do.
    SplitIncomplete = "split_incomplete" => None, Other;
    /// `split` takes exactly one input file.
    SplitOneFile = "split_one_file" => None, Input;
    /// A drop's ciphertext or plaintext does not match its manifest: do not use it.
    Tampered = "tampered" => None, Verification;
    /// A drop was addressed to the sender's own party.
    ToOwnParty = "to_own_party" => None, Input;
    /// The hub claims downloads or acknowledgements the log does not back.
    UnbackedClaims = "unbacked_claims" => None, Verification;
    /// A drop cannot be decrypted with this member's key.
    Undecryptable = "undecryptable" => None, Verification;
    /// A drop cannot be delivered to a recipient: the hub refused it for good.
    Undeliverable = "undeliverable" => None, Input;
    /// A member named is not in the directory.
    UnknownMember = "unknown_member" => None, Input;
    /// Some rows of a split table match no recipient.
    UnroutableRows = "unroutable_rows" => None, Input;
    /// A received archive holds a path that would escape its folder: not extracted.
    UnsafeArchive = "unsafe_archive" => None, Verification;
    /// A file's kind is not one the client sends (e.g. a device or a link).
    UnsupportedFile = "unsupported_file" => None, Input;
    /// A table's format is not one `split` reads.
    UnsupportedFormat = "unsupported_format" => None, Input;
    /// The hub holds bytes of an upload other than the ones sent.
    UploadCorrupted = "upload_corrupted" => None, Verification;
    /// A cut-off upload cannot be continued on the hub: the send starts afresh.
    UploadNotContinuable = "upload_not_continuable" => None, Refused;
    /// Another `sealdrop watch` is already serving the same folder: stop it first.
    WatchBusy = "watch_busy" => None, Input;
    /// `watch --once` ended with files not sent or drops not fetched: see `failed/` and `status.json`.
    WatchFailed = "watch_failed" => None, Other;
    /// `watch --status-listen` cannot listen on the address: choose another port or a local address.
    WatchListen = "watch_listen" => None, Input;
    /// A file the watch service keeps in `.sealdrop/` cannot be read: the message says what to do.
    WatchStateInvalid = "watch_state_invalid" => None, Input;
    /// A witness key is not listed for the party in the directory.
    WitnessNotListed = "witness_not_listed" => None, Input;
    /// The passphrase does not open the member key file.
    WrongPassphrase = "wrong_passphrase" => None, Input;
}

impl ErrorCode {
    /// The code a hub or client wrote, if this enum knows it.
    pub fn from_wire(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The process exit status of the client reporting this code itself.
    pub fn exit_status(self) -> u8 {
        self.exit_kind().exit_code()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The code is not one this enum knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownErrorCode(pub String);

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code `{}`", self.0)
    }
}

impl std::error::Error for UnknownErrorCode {}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_wire(s).ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The statuses the hub served before the enum existed (its `status_of`
    /// match), written out so the table above cannot change one unnoticed.
    const HUB_STATUSES: [(&str, u16); 41] = [
        ("unauthenticated", 401),
        ("bad_signature", 401),
        ("unknown_key", 401),
        ("key_revoked", 401),
        ("stale_request", 401),
        ("replayed_nonce", 401),
        ("forbidden", 403),
        ("not_found", 404),
        ("gone", 410),
        ("bad_request", 400),
        ("unknown_party", 422),
        ("unknown_agreement", 422),
        ("not_in_agreement", 422),
        ("agreement_not_in_force", 422),
        ("bad_expiry", 422),
        ("bad_manifest", 422),
        ("hash_mismatch", 422),
        ("header_mismatch", 422),
        ("not_post_quantum", 422),
        ("bad_receipt", 422),
        ("bad_cosignature", 422),
        ("directory_bad_signature", 422),
        ("directory_invalid", 422),
        ("conflict", 409),
        ("directory_rollback", 409),
        ("recall_refused", 409),
        ("upload_offset_mismatch", 409),
        ("not_downloaded", 409),
        ("download_limit", 409),
        ("payload_too_large", 413),
        ("request_timeout", 408),
        ("bad_range", 416),
        ("insufficient_storage", 507),
        ("rate_limited", 429),
        ("quota_open_uploads", 429),
        ("quota_held_bytes", 507),
        ("hub_busy", 503),
        ("length_required", 411),
        ("drop_exists", 409),
        ("too_large_for_one_request", 413),
        ("internal", 500),
    ];

    #[test]
    fn the_hub_serves_exactly_the_statuses_it_always_has() {
        for (code, status) in HUB_STATUSES {
            let known = ErrorCode::from_wire(code).unwrap_or_else(|| panic!("{code} is not in the enum"));
            assert_eq!(known.http_status(), Some(status), "{code}");
        }
        let served: HashSet<&str> =
            ErrorCode::ALL.iter().filter(|c| c.http_status().is_some()).map(|c| c.as_str()).collect();
        let listed: HashSet<&str> = HUB_STATUSES.iter().map(|(c, _)| *c).collect();
        assert_eq!(served, listed, "the codes the hub serves");
    }

    #[test]
    fn every_code_round_trips_and_no_two_share_a_string() {
        let mut seen = HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code:?} shares the string {}", code.as_str());
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
            assert!(
                code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code:?}"
            );
        }
        assert_eq!("no_such_code".parse::<ErrorCode>(), Err(UnknownErrorCode("no_such_code".to_owned())));
    }

    #[test]
    fn a_code_only_the_hub_serves_is_a_refusal_to_the_client() {
        assert_eq!(ErrorCode::Gone.exit_kind(), ExitKind::Refused);
        assert_eq!(ErrorCode::Gone.exit_status(), 6);
        assert_eq!(ErrorCode::PathMissing.exit_status(), 3);
        assert_eq!(ErrorCode::Tampered.exit_status(), 4);
        assert_eq!(ErrorCode::HubUnreachable.exit_status(), 5);
        assert_eq!(ErrorCode::AuditWarnings.exit_status(), 7);
        assert_eq!(ErrorCode::Io.exit_status(), 1);
    }

    #[test]
    fn the_hub_binarys_own_codes_exit_1_and_are_not_served() {
        for code in [ErrorCode::ListenFailed, ErrorCode::DataDirInUse, ErrorCode::TlsCertIsCa, ErrorCode::Usage] {
            assert_eq!(code.http_status(), None, "{code}");
            assert_eq!(code.exit_status(), 1, "{code}");
        }
    }
}
