//! How samples (the alerts, cards and replies every template is checked with at start-up and
//! in tests) name what the CRM or a person wrote.

/// How the samples name things the CRM or a person wrote (deal ids and names, owners, stages,
/// segment values, questions): [`same`] as written, or [`hostile`] with markup of every
/// platform in them, to show that every template escapes what it did not write.
pub type Names<'a> = &'a dyn Fn(&str) -> String;

/// A name as written.
pub fn same(name: &str) -> String {
    name.to_owned()
}

/// Markup each platform would act on: Slack's mentions and links, Markdown's links and
/// emphasis (Teams, Discord), Discord's mentions.
pub const HOSTILE: &str =
    "<!channel> <@U0BOSS> <https://evil.example|Click> [Log in](https://evil.example) **now** @everyone <@&42>";

/// A name with [`HOSTILE`] markup after it.
pub fn hostile(name: &str) -> String {
    format!("{name} {HOSTILE}")
}
