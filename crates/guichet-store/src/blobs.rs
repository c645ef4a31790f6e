//! Blobs (uploads, generated PDFs), content-addressed by SHA-256 (`ab/cdef…`):
//! by default in a local folder, each written to a temporary file, synced
//! and renamed, so a blob is either whole or absent; or in any
//! S3-compatible object store (`s3://bucket/prefix`, through the
//! `object_store` crate), where a PUT is atomic. The bytes are stored
//! before the metadata row, so a row never names missing bytes.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Result, Store, StoreError, on};

#[derive(Debug)]
pub(crate) enum Blobs {
    Local { dir: PathBuf },
    Remote { store: std::sync::Arc<dyn object_store::ObjectStore>, name: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobMeta {
    pub sha256: String,
    pub media_type: String,
    pub size: i64,
}

fn check_sha(sha: &str) -> Result<()> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

impl Blobs {
    pub(crate) fn local(dir: &Path) -> Result<Blobs> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Blob(format!("{}: {e}", dir.display())))?;
        Ok(Blobs::Local { dir: dir.to_owned() })
    }

    /// `s3://bucket[/prefix]`; `options` are object_store's S3 settings
    /// (`endpoint`, `region`, `access_key_id`, `secret_access_key`,
    /// `aws_allow_http`…), on top of the standard `AWS_*` variables.
    pub(crate) fn s3(url: &str, options: &[(String, String)]) -> Result<Blobs> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| StoreError::Config(format!("a blob store URL starts with s3:// (got {url:?})")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(StoreError::Config("the blob store URL names no bucket".into()));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in options {
            let key: AmazonS3ConfigKey =
                k.parse().map_err(|_| StoreError::Config(format!("unknown S3 setting {k:?}")))?;
            b = b.with_config(key, v);
        }
        let s3 = b.build().map_err(|e| StoreError::Config(format!("S3: {e}")))?;
        let store: std::sync::Arc<dyn object_store::ObjectStore> = if prefix.trim_matches('/').is_empty() {
            std::sync::Arc::new(s3)
        } else {
            std::sync::Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.trim_matches('/')))
        };
        Ok(Blobs::Remote { store, name: url.to_owned() })
    }

    fn path(dir: &Path, sha: &str) -> Result<PathBuf> {
        check_sha(sha)?;
        Ok(dir.join(&sha[..2]).join(&sha[2..]))
    }

    async fn put(&self, sha: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Blobs::Local { dir } => {
                let (dir, sha) = (dir.clone(), sha.to_owned());
                tokio::task::spawn_blocking(move || Blobs::put_local(&dir, &sha, &bytes))
                    .await
                    .map_err(|e| StoreError::Blob(e.to_string()))?
            }
            Blobs::Remote { store, name } => {
                check_sha(sha)?;
                let path = object_store::path::Path::from(format!("{}/{}", &sha[..2], &sha[2..]));
                store
                    .put(&path, object_store::PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(|e| StoreError::Blob(format!("{name}: {e}")))
            }
        }
    }

    async fn get(&self, sha: &str) -> Result<Vec<u8>> {
        match self {
            Blobs::Local { dir } => {
                let (dir, sha) = (dir.clone(), sha.to_owned());
                tokio::task::spawn_blocking(move || Blobs::get_local(&dir, &sha))
                    .await
                    .map_err(|e| StoreError::Blob(e.to_string()))?
            }
            Blobs::Remote { store, name } => {
                check_sha(sha)?;
                let path = object_store::path::Path::from(format!("{}/{}", &sha[..2], &sha[2..]));
                match store.get(&path).await {
                    Ok(r) => Ok(r.bytes().await.map_err(|e| StoreError::Blob(format!("{name}: {e}")))?.to_vec()),
                    Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound),
                    Err(e) => Err(StoreError::Blob(format!("{name}: {e}"))),
                }
            }
        }
    }

    fn put_local(dir: &Path, sha: &str, bytes: &[u8]) -> Result<()> {
        let path = Blobs::path(dir, sha)?;
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

    fn get_local(dir: &Path, sha: &str) -> Result<Vec<u8>> {
        let path = Blobs::path(dir, sha)?;
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
        self.inner.blobs.put(&sha, bytes).await?;
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
        let bytes = self.inner.blobs.get(sha).await?;
        Ok((BlobMeta { sha256: sha.into(), media_type, size }, bytes))
    }
}
