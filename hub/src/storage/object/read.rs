//! Reading a run of segments as one stream: each segment is fetched when
//! the one before it has been read, and the first with a ranged GET from
//! where the read starts.

use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore};

use crate::storage::blob::BlobRead;

/// Reads segments `keys` (of `sizes` bytes) from byte `start` of the whole;
/// at or past the end, nothing.
pub(super) fn segments_from(store: Arc<dyn ObjectStore>, keys: Vec<Path>, sizes: &[u64], start: u64) -> BlobRead {
    let total: u64 = sizes.iter().sum();
    let start = start.min(total);
    let mut skip = start;
    let mut wanted = Vec::new();
    for (key, &size) in keys.into_iter().zip(sizes) {
        if skip >= size {
            skip -= size;
            continue;
        }
        // Only the first segment read can start inside.
        let range = (skip > 0).then_some(GetRange::Offset(skip));
        skip = 0;
        wanted.push((key, range));
    }
    let bytes = futures_util::stream::iter(wanted)
        .then(move |(key, range)| {
            let store = store.clone();
            async move {
                let options = GetOptions { range, ..GetOptions::default() };
                let got = store.get_opts(&key, options).await.map_err(|e| read_error(&key, e))?;
                Ok::<_, std::io::Error>(got.into_stream().map_err(move |e| read_error(&key, e)))
            }
        })
        .try_flatten();
    let reader = tokio_util::io::StreamReader::new(bytes);
    BlobRead { reader: Box::pin(reader), len: total - start }
}

fn read_error(key: &Path, e: object_store::Error) -> std::io::Error {
    std::io::Error::other(format!("cannot read {key} from the object store: {e}"))
}
