//! The API layers: one module per AWS service, each the only code that knows its wire format.

pub mod admin;
pub mod ecs;
pub mod events;
pub mod logs;
pub mod sns;
pub mod sts;

/// One page of a listing whose `nextToken` is the offset of the next item (ECS, EventBridge).
/// `None` when the token is not one lookout made.
pub fn offset_page<T: Clone>(items: &[T], limit: usize, token: Option<&str>) -> Option<(Vec<T>, Option<String>)> {
    use base64::Engine;
    let codec = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let start = match token {
        None => 0,
        Some(t) => codec
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()))?,
    }
    .min(items.len());
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| codec.encode(format!("o:{end}")));
    Some((items[start..end].to_vec(), next))
}

#[cfg(test)]
mod tests {
    #[test]
    fn offset_pages_walk_the_whole_list_and_refuse_foreign_tokens() {
        let items: Vec<u32> = (0..5).collect();
        let (a, t) = super::offset_page(&items, 2, None).unwrap();
        let (b, t) = super::offset_page(&items, 2, t.as_deref()).unwrap();
        let (c, t) = super::offset_page(&items, 2, t.as_deref()).unwrap();
        assert_eq!((a, b, c, t), (vec![0, 1], vec![2, 3], vec![4], None));
        assert!(super::offset_page(&items, 2, Some("bogus")).is_none());
    }
}
