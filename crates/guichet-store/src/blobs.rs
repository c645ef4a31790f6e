//! Blobs (uploads, generated PDFs), content-addressed by SHA-256: the
//! bytes in a folder (`ab/cdef…`), written to a temporary file, synced and
//! renamed, so a blob is either whole or absent; the metadata row in the
//! database. An S3-compatible backend is the next step (see
//! ARCHITECTURE.md); the interface is the same.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Result, Store, StoreError, on};

#[derive(Debug)]
pub(crate) struct Blobs {
    dir: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobMeta {
    pub sha256: String,
    pub media_type: String,
    pub size: i64,
}

impl Blobs {
    pub(crate) fn local(dir: &Path) -> Result<Blobs> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Blob(format!("{}: {e}", dir.display())))?;
        Ok(Blobs { dir: dir.to_owned() })
    }

    fn path(&self, sha: &str) -> Result<PathBuf> {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(StoreError::NotFound);
        }
        Ok(self.dir.join(&sha[..2]).join(&sha[2..]))
    }

    fn put(&self, sha: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(sha)?;
        if path.exists() {
            return Ok(());
        }
        let err = |e: std::io::Error| StoreError::Blob(format!("{}: {e}", path.display()));
        let dir = path.parent().ok_or_else(|| StoreError::Blob("bad blob path".into()))?;
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(".{}.{}", &sha[2..], crate::new_id("")?));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        Ok(())
    }

    fn get(&self, sha: &str) -> Result<Vec<u8>> {
        let path = self.path(sha)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(StoreError::Blob(format!("{}: {e}", path.display()))),
        }
    }
}

impl Store {
    /// Stores bytes (once, whoever sends them again) and returns their
    /// SHA-256. The bytes are on disk before the row is written.
    pub async fn put_blob(&self, bytes: Vec<u8>, media_type: &str, at: i64) -> Result<BlobMeta> {
        let sha = crate::hex(&Sha256::digest(&bytes));
        let size = bytes.len() as i64;
        let inner = self.inner.clone();
        let s = sha.clone();
        tokio::task::spawn_blocking(move || inner.blobs.put(&s, &bytes))
            .await
            .map_err(|e| StoreError::Blob(e.to_string()))??;
        on!(self.db(), p => sqlx::query(
            "INSERT INTO blobs (sha256, media_type, size, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha)
        .bind(media_type)
        .bind(size)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(BlobMeta { sha256: sha, media_type: media_type.into(), size })
    }

    /// The bytes and metadata of a blob.
    pub async fn blob(&self, sha: &str) -> Result<(BlobMeta, Vec<u8>)> {
        let meta: Option<(String, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT media_type, size FROM blobs WHERE sha256 = $1",
        )
        .bind(sha)
        .fetch_optional(p)
        .await?);
        let (media_type, size) = meta.ok_or(StoreError::NotFound)?;
        let inner = self.inner.clone();
        let s = sha.to_owned();
        let bytes = tokio::task::spawn_blocking(move || inner.blobs.get(&s))
            .await
            .map_err(|e| StoreError::Blob(e.to_string()))??;
        Ok((BlobMeta { sha256: sha.into(), media_type, size }, bytes))
    }
}
