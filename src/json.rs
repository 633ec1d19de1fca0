//! JSON helpers every layer uses.

/// Sets `key` on a JSON object (nothing happens on any other value): the panic-free
/// form of `value[key] = v`.
pub fn set_field(value: &mut serde_json::Value, key: &str, v: serde_json::Value) {
    if let Some(o) = value.as_object_mut() {
        o.insert(key.to_string(), v);
    }
}
