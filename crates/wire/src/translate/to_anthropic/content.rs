//! User content parts and text parts, OpenAI -> Anthropic blocks.
//!
//! Images and PDFs travel inline as base64 (or by URL); both formats can
//! carry them, only the wrapping differs. Parts with no Anthropic form
//! (audio, uploaded file ids) are refused rather than silently dropped,
//! because the model would answer a different question without them.

use serde_json::{Map, Value, json};

use super::Content;
use crate::WireError;
use crate::field::{self, Path, describe};

/// The texts of string content or an array of text parts.
pub(super) fn texts(content: &Value, at: Path<'_>) -> Result<Vec<String>, WireError> {
    match content {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let part_at = at.index(i);
                let obj = field::object(part, part_at)?;
                let kind = field::required_str(obj, "type", part_at)?;
                match kind {
                    "text" | "refusal" => Ok(field::opt_str(obj, kind, part_at)?
                        .unwrap_or_default()
                        .to_owned()),
                    other => Err(part_at
                        .key("type")
                        .invalid(format!("expected a text part, got '{other}'"))),
                }
            })
            .collect(),
        v => Err(at.invalid(format!(
            "must be a string or an array of content parts, got {}",
            describe(v)
        ))),
    }
}

pub(super) fn user_content(content: &Value, at: Path<'_>) -> Result<Content, WireError> {
    let parts = match content {
        Value::String(s) => return Ok(Content::Text(s.clone())),
        Value::Array(parts) => parts,
        v => {
            return Err(at.invalid(format!(
                "must be a string or an array of content parts, got {}",
                describe(v)
            )));
        }
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let part_at = at.index(i);
        let obj = field::object(part, part_at)?;
        match field::required_str(obj, "type", part_at)? {
            "text" => {
                let text = field::opt_str(obj, "text", part_at)?.unwrap_or_default();
                if !text.is_empty() {
                    blocks.push(text_block(text));
                }
            }
            "image_url" => {
                let image_at = part_at.key("image_url");
                let image = field::present(obj, "image_url")
                    .ok_or_else(|| image_at.invalid("is required"))?;
                let url = field::required_str(field::object(image, image_at)?, "url", image_at)?;
                blocks.push(image_block(url, image_at.key("url"))?);
            }
            "file" => blocks.push(document_block(obj, part_at)?),
            other => {
                return Err(part_at.key("type").invalid(format!(
                    "content part type '{other}' cannot be sent to an Anthropic model"
                )));
            }
        }
    }
    Ok(Content::Blocks(blocks))
}

/// An image block from an OpenAI image URL: inline `data:` URLs become
/// base64 sources, http(s) URLs become url sources.
pub(super) fn image_block(url: &str, at: Path<'_>) -> Result<Value, WireError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    let (media_type, data) =
        data_url(url).ok_or_else(|| at.invalid("must be an http(s) URL or a base64 data: URL"))?;
    Ok(json!({
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": data}
    }))
}

/// A document block from a `file` part with inline `file_data`.
pub(super) fn document_block(part: &Map<String, Value>, at: Path<'_>) -> Result<Value, WireError> {
    let file_at = at.key("file");
    let file = field::present(part, "file").ok_or_else(|| file_at.invalid("is required"))?;
    let file = field::object(file, file_at)?;
    let data_at = file_at.key("file_data");
    let Some(url) = field::opt_str(file, "file_data", file_at)? else {
        return Err(data_at.invalid("only inline file_data can be sent to an Anthropic model"));
    };
    let (media_type, data) =
        data_url(url).ok_or_else(|| data_at.invalid("must be a base64 data: URL"))?;
    Ok(json!({
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data}
    }))
}

/// `data:<media type>;base64,<data>` split into its two parts.
pub(super) fn data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then_some((media_type, data))
}

pub(super) fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}
