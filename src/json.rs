//! JSON helpers every layer uses.

/// Sets `key` on a JSON object (nothing happens on any other value): the panic-free
/// form of `value[key] = v`.
pub fn set_field(value: &mut serde_json::Value, key: &str, v: serde_json::Value) {
    if let Some(o) = value.as_object_mut() {
        o.insert(key.to_string(), v);
    }
}

/// About how many bytes `value` serialises to (its strings and a little for the rest;
/// escapes make it more): the capacity to write it into, so that a large reply (a long
/// text, generated images) is not held twice over while a growing buffer moves.
pub fn size_hint(value: &serde_json::Value) -> usize {
    let own = text_len(value);
    own.saturating_add(own / 32).saturating_add(64)
}

/// The bytes of `value`'s strings and keys, and eight for each other item.
fn text_len(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => s.len().saturating_add(2),
        Value::Array(a) => a.iter().map(text_len).fold(8, usize::saturating_add),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| k.len().saturating_add(text_len(v)))
            .fold(8, usize::saturating_add),
        _ => 8,
    }
}

/// `value` written into a buffer of [`size_hint`]'s capacity.
pub fn to_vec_sized(
    value: &serde_json::Value,
    write: impl serde::Serialize,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size_hint(value));
    serde_json::to_writer(&mut out, &write)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_value_is_written_into_a_buffer_it_fits() {
        let v = serde_json::json!({"a": "x".repeat(200_000), "b": [1, 2, "y".repeat(70_000)], "c": {"d": null}});
        let out = super::to_vec_sized(&v, &v).unwrap();
        assert_eq!(out, serde_json::to_vec(&v).unwrap());
        assert!(out.capacity() >= out.len() && out.capacity() < out.len() + out.len() / 16);
    }
}
