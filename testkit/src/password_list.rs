//! The common-password list the product embeds (`shared/data/common-passwords.fst`): an
//! FST set (the `fst` crate) built from the `passwords` crate's list, exact (every entry,
//! nothing else) and about a third of the list's size, searched without decompressing.
//! Regenerate with `contact-auth-admin password-list --from <common-passwords.json> --out
//! shared/data/common-passwords.fst` (the JSON is `data/common-passwords.json` of the
//! `passwords` crate source); `testkit/tests/password_list.rs` checks the committed file
//! against the crate's list.

/// The FST set of `json` (a JSON array of strings), sorted and deduplicated.
pub fn build(json: &str) -> Result<Vec<u8>, String> {
    let mut list: Vec<String> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    list.sort();
    list.dedup();
    let mut builder = fst::SetBuilder::memory();
    builder
        .extend_iter(list.iter())
        .map_err(|e| e.to_string())?;
    builder.into_inner().map_err(|e| e.to_string())
}
