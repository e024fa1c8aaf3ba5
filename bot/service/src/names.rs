//! Account names as people type them: normalised (case, punctuation and legal suffixes dropped)
//! and compared by Jaro–Winkler similarity, with a cheap bound that skips most pairs.

/// Below this Jaro–Winkler similarity a name is not suggested.
pub const SIMILAR: f64 = 0.82;

/// A normalised name with what bounds its similarity to another cheaply: its length and how
/// often each letter and digit occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    len: u16,
    /// Counts of a-z, 0-9 and anything else.
    bag: [u8; 37],
}

impl Name {
    pub fn new(text: String) -> Name {
        let mut bag = [0u8; 37];
        let mut len = 0u16;
        for c in text.chars() {
            let slot = match c {
                'a'..='z' => c as usize - 'a' as usize,
                '0'..='9' => 26 + (c as usize - '0' as usize),
                _ => 36,
            };
            bag[slot] = bag[slot].saturating_add(1);
            len = len.saturating_add(1);
        }
        Name { text, len, bag }
    }

    /// Whether `other` can reach a Jaro–Winkler similarity of `SIMILAR`. Jaro is at most
    /// (m/a + m/b + 1)/3, with m the matching characters: never more than the characters the two
    /// have in common (counted with repeats; "anything else" counts as common, to stay an upper
    /// bound). Winkler's prefix bonus adds at most 0.4 of what is missing, so Jaro must reach 0.7.
    pub fn could_be_similar(&self, other: &Name) -> bool {
        let (a, b) = (f64::from(self.len), f64::from(other.len));
        if a == 0.0 || b == 0.0 {
            return false;
        }
        let mut common: u32 = self.bag[..36].iter().zip(&other.bag[..36]).map(|(x, y)| u32::from(*x.min(y))).sum();
        common += u32::from(self.bag[36].max(other.bag[36]));
        let m = f64::from(common).min(a.min(b));
        (m / a + m / b + 1.0) / 3.0 >= (SIMILAR - 0.4) / 0.6
    }
}

/// Lower case, spaces collapsed, and the legal suffixes people leave out dropped.
pub fn normalise(s: &str) -> String {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .filter(|w| !w.is_empty())
        .filter(|w| !matches!(*w, "inc" | "corp" | "corporation" | "llc" | "ltd" | "gmbh" | "co" | "plc"))
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn the_letter_count_bound_never_skips_a_name_jaro_winkler_would_suggest() {
        use super::{Name, SIMILAR};
        let words = [
            "acme",
            "acme robotics",
            "acmee",
            "bluepeak logistics",
            "blue peak",
            "a",
            "acme robotics holdings",
            "starworks logistics holdings",
            "starworkslogisticsholdingsx",
            "d000123",
            "d000132",
            "zeta-9 ag",
        ];
        let mut pruned = 0;
        for a in words {
            for b in words {
                let (na, nb) = (Name::new(a.into()), Name::new(b.into()));
                if strsim::jaro_winkler(a, b) >= SIMILAR {
                    assert!(na.could_be_similar(&nb), "{a} ~ {b}");
                } else if !na.could_be_similar(&nb) {
                    pruned += 1;
                }
            }
        }
        assert!(pruned > 40, "the bound prunes most dissimilar pairs: {pruned}");
    }

    #[test]
    fn names_match_without_case_punctuation_or_legal_suffixes() {
        assert_eq!(normalise("Acme Corp"), "acme");
        assert_eq!(normalise("  ACME,  Inc. "), "acme");
        assert_eq!(normalise("Bluepeak Logistics Inc"), "bluepeak logistics");
    }
}
