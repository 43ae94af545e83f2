//! Where the object store keeps what (see the parent module): the bucket
//! and prefix of `s3://bucket/prefix`, the keys under the prefix, and a
//! blob's manifest.

use object_store::path::Path;
use sealdrop_proto::ids::DropId;
use serde::{Deserialize, Serialize};

/// A bucket and a prefix in it, from `s3://bucket/prefix` (the prefix may be
/// empty: the whole bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket, which must exist (the hub does not create buckets: their
    /// policies, versioning and lifecycle are the operator's).
    pub bucket: String,
    /// The folder of the bucket the hub keeps its objects in, without
    /// leading or trailing `/`, so one bucket can hold several hubs.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket/prefix`; the error says what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "give s3://BUCKET or s3://BUCKET/PREFIX, e.g. s3://council-hub/blobs";
        let Some(rest) = text.strip_prefix("s3://") else { return Err(expected.to_owned()) };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's rules for new buckets: 3 to 63 lowercase letters, digits,
        // dots and hyphens, starting and ending with a letter or digit.
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !(3..=63).contains(&bucket.len())
            || !bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            || !edge_ok(bucket.chars().next())
            || !edge_ok(bucket.chars().last())
        {
            return Err(format!(
                "`{bucket}` is not a bucket name (3 to 63 lowercase letters, digits, dots and hyphens); {expected}"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            match Path::parse(prefix) {
                Ok(path) if path.as_ref() == prefix => {}
                _ => {
                    return Err(format!(
                        "`{prefix}` is not a prefix: use folder names without empty parts, `.` or `..`; {expected}"
                    ));
                }
            }
        }
        Ok(Self { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// The keys of a store's objects.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    root: Path,
}

impl Layout {
    pub(super) fn new(location: &S3Location) -> Self {
        // `S3Location::parse` has checked the prefix.
        Self { root: Path::parse(&location.prefix).unwrap_or_default() }
    }

    /// The folder of upload markers.
    pub(super) fn uploads(&self) -> Path {
        self.root.clone().join("uploads")
    }

    /// The prefix itself: every object of this store is under it.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of blob manifests.
    pub(super) fn blobs(&self) -> Path {
        self.root.clone().join("blobs")
    }

    /// A drop's upload marker.
    pub(super) fn upload(&self, id: &DropId) -> Path {
        self.uploads().join(id.as_str())
    }

    /// A drop's blob manifest.
    pub(super) fn blob(&self, id: &DropId) -> Path {
        self.blobs().join(id.as_str())
    }

    /// The folder of all a drop's segments.
    pub(super) fn drop_segments(&self, id: &DropId) -> Path {
        self.root.clone().join("segments").join(id.as_str())
    }

    /// The folder of one generation's segments.
    pub(super) fn segments(&self, id: &DropId, generation: &str) -> Path {
        self.drop_segments(id).join(generation)
    }

    /// One segment.
    pub(super) fn segment(&self, id: &DropId, generation: &str, index: u32) -> Path {
        segment_in(&self.segments(id, generation), index)
    }

    /// The index of a segment from its name, or `None` for anything else.
    pub(super) fn segment_index(name: &str) -> Option<u32> {
        (name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit())).then(|| name.parse().ok()).flatten()
    }
}

/// Segment `index` in a generation's folder: eight digits, so names sort
/// in order.
pub(super) fn segment_in(folder: &Path, index: u32) -> Path {
    folder.clone().join(format!("{index:08}").as_str())
}

/// A fresh generation name: 128 random bits, so instances never pick the
/// same one.
pub(super) fn new_generation() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Refuses a generation this store does not make (128 bits in hex), read
/// from a marker or manifest: it becomes part of keys.
pub(super) fn check_generation(generation: &str) -> Result<(), String> {
    if generation.len() == 32 && generation.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("`{generation}` is not an upload generation"))
    }
}

/// A stored blob: which generation's segments hold it, and their sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The upload generation whose segments are the blob.
    pub generation: String,
    /// Each segment's size in bytes, in order (segment `i` is named `i`).
    pub segments: Vec<u64>,
}

impl Manifest {
    /// The manifest's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest serialises")
    }

    /// Reads a manifest, refusing a generation that is not one this store
    /// makes (it becomes part of keys).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let manifest: Self = serde_json::from_slice(body).map_err(|e| format!("not a blob manifest: {e}"))?;
        check_generation(&manifest.generation)?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_print() {
        for (text, bucket, prefix) in [
            ("s3://council-hub", "council-hub", ""),
            ("s3://council-hub/", "council-hub", ""),
            ("s3://council-hub/blobs", "council-hub", "blobs"),
            ("s3://a.b-c/hubs/london/", "a.b-c", "hubs/london"),
        ] {
            let location = S3Location::parse(text).unwrap();
            assert_eq!((location.bucket.as_str(), location.prefix.as_str()), (bucket, prefix), "{text}");
            assert_eq!(S3Location::parse(&location.to_string()).unwrap(), location);
        }
        for bad in [
            "council-hub",
            "https://council-hub",
            "s3://",
            "s3://ab",
            "s3://Council",
            "s3://-hub",
            "s3://hub_1",
            "s3://hub/a//b",
            "s3://hub/../x",
            "s3://hub/a/./b",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn keys_are_made_of_the_drop_id_only() {
        let layout = Layout::new(&S3Location::parse("s3://bucket/hub").unwrap());
        let id = DropId::random();
        let generation = new_generation();
        assert_eq!(layout.upload(&id).as_ref(), format!("hub/uploads/{id}"));
        assert_eq!(layout.blob(&id).as_ref(), format!("hub/blobs/{id}"));
        assert_eq!(layout.segment(&id, &generation, 7).as_ref(), format!("hub/segments/{id}/{generation}/00000007"));
        assert_eq!(Layout::segment_index("00000007"), Some(7));
        assert_eq!(Layout::segment_index("7"), None);
        assert_eq!(Layout::segment_index("0000000x"), None);
        let bare = Layout::new(&S3Location::parse("s3://bucket").unwrap());
        assert_eq!(bare.blob(&id).as_ref(), format!("blobs/{id}"));
    }

    #[test]
    fn a_manifest_round_trips_and_bad_ones_are_refused() {
        let manifest = Manifest { generation: new_generation(), segments: vec![8, 8, 3] };
        assert_eq!(Manifest::parse(&manifest.to_json()).unwrap(), manifest);
        assert!(Manifest::parse(b"{}").is_err());
        assert!(Manifest::parse(br#"{"generation":"../x","segments":[]}"#).is_err());
    }
}
