//! The UserID lists of requests that name many accounts (`To_Account`, `CheckItem`, …): each
//! entry parsed on its own, and the store's answers for the valid ones put back in request order.
//! Shared by the handlers and [`crate::profiles`]; nothing here touches the store or the wire.

use portrait_core::Identifier;

/// Parses each requested UserID; the ones that are not valid UserIDs are `None` (they cannot exist,
/// and are answered per item like unknown accounts).
pub fn parse_ids<S: AsRef<str>>(raw: &[S]) -> (Vec<Option<Identifier>>, Vec<Identifier>) {
    let ids: Vec<Option<Identifier>> = raw
        .iter()
        .map(|r| Identifier::parse(r.as_ref()).ok())
        .collect();
    let valid = ids.iter().flatten().cloned().collect();
    (ids, valid)
}

/// Puts the store's answers for the valid UserIDs (in order) back at their request positions;
/// invalid UserIDs get `None`.
pub fn spread<T>(ids: &[Option<Identifier>], answers: Vec<T>) -> Vec<Option<T>> {
    let mut answers = answers.into_iter();
    ids.iter()
        .map(|id| id.as_ref().and_then(|_| answers.next()))
        .collect()
}
