//! Finding a question's words and masking what was read, for the slot readers.

/// Where `phrase` occurs in `text` as whole words.
pub(crate) fn find_phrase(text: &str, phrase: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(phrase) {
        let at = from + i;
        let end = at + phrase.len();
        let word = |c: char| c.is_alphanumeric() || matches!(c, '<' | '>' | '_');
        let before = text[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = text[end..].chars().next().is_none_or(|c| !word(c));
        if before && after {
            return Some(at);
        }
        from = at + phrase.len();
    }
    None
}

/// Replaces `range` of `text` by `placeholder`, padded with spaces.
pub(super) fn mask(text: &mut String, range: std::ops::Range<usize>, placeholder: &str) {
    text.replace_range(range, &format!(" {placeholder} "));
}
