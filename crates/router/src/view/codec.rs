//! Histogram encoding for the stats exchange. Every node encodes latency histograms as
//! hdrhistogram V2+deflate with the bounds in [`switchyard_core::stats`], so a receiver can
//! merge them bucket for bucket without losing precision.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use switchyard_core::stats::{HIST_HIGH_US, HIST_LOW_US, HIST_SIGFIG};

/// Why a peer's histogram bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a V2 (deflated or not) histogram.
    #[error("histogram does not decode: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    /// The histogram's precision differs from the shared one, so its buckets cannot be merged.
    #[error("histogram has {found} significant figures, the cluster uses {HIST_SIGFIG}")]
    Precision {
        /// The significant figures the sender used.
        found: u8,
    },
}

impl CodecError {
    /// Label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CodecError::Decode(_) => "decode",
            CodecError::Precision { .. } => "precision",
        }
    }
}

/// An empty histogram with the cluster's shared bounds.
#[expect(
    clippy::expect_used,
    reason = "the bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5)"
)]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG)
        .expect("valid histogram bounds")
}

/// A histogram of `samples_us`, each clamped into the shared bounds (tests and benchmarks).
pub fn histogram_of(samples_us: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &s in samples_us {
        h.saturating_record(s.clamp(HIST_LOW_US, HIST_HIGH_US));
    }
    h
}

/// Encodes `h` as V2+deflate, the exchange's wire form. An empty histogram encodes as no bytes,
/// which receivers read as "no samples".
///
/// Serialising into memory fails only when a bucket count exceeds `i64::MAX`, which no real
/// interval reaches; that case also yields no bytes, so the interval's latencies are lost rather
/// than the whole report.
pub fn encode_histogram(h: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    if h.is_empty() {
        return out;
    }
    if V2DeflateSerializer::new().serialize(h, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Decodes exchange bytes; empty bytes are an empty histogram.
///
/// # Errors
/// [`CodecError`] when the bytes are not a histogram or use another precision.
pub fn decode_histogram(bytes: &[u8]) -> Result<Option<Histogram<u64>>, CodecError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut reader = bytes;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut reader)
        .map_err(CodecError::Decode)?;
    if h.sigfig() != HIST_SIGFIG {
        return Err(CodecError::Precision { found: h.sigfig() });
    }
    Ok(if h.is_empty() { None } else { Some(h) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_keeps_every_bucket() {
        let h = histogram_of(&[1, 10, 1_000, 25_000, 25_000, 3_000_000]);
        let bytes = encode_histogram(&h);
        assert!(!bytes.is_empty());
        let back = decode_histogram(&bytes).unwrap().unwrap();
        assert_eq!(back.len(), 6);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn empty_is_no_bytes_and_garbage_is_an_error() {
        assert!(encode_histogram(&new_histogram()).is_empty());
        assert!(decode_histogram(&[]).unwrap().is_none());
        assert_eq!(
            decode_histogram(b"not a histogram").unwrap_err().kind(),
            "decode"
        );
    }
}
