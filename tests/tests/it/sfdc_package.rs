//! The Salesforce package in `sfdc-package/`: every field the service writes exists there with
//! the type the service writes, and the package's own offline checks pass (LWC Jest tests, Apex
//! parsed by prettier-plugin-apex, PMD's Apex rules, conversion to Metadata API format).

use std::path::{Path, PathBuf};

fn package() -> PathBuf {
    tests::repo_root().join("sfdc-package")
}

/// The text of the first `<tag>` in `xml`.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].trim())
}

fn field(object: &str, name: &str) -> String {
    let path = package()
        .join("force-app/main/default/objects")
        .join(object)
        .join("fields")
        .join(format!("{name}.field-meta.xml"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{object}.{name}: the package has no {}: {e}", path.display()))
}

#[test]
fn every_field_the_service_writes_is_in_the_package_with_its_type() {
    for (name, kind) in bot::salesforce::WRITTEN_FIELDS {
        let xml = field("Opportunity", name);
        assert_eq!(element(&xml, "fullName"), Some(name), "Opportunity.{name}");
        assert_eq!(element(&xml, "type"), Some(kind), "Opportunity.{name}'s type");
    }
    // The category picklist holds every value the service writes, and is restricted.
    let xml = field("Opportunity", "Risk_Category__c");
    assert_eq!(element(&xml, "restricted"), Some("true"), "a restricted picklist");
    for category in engine::domain::RiskCategory::ALL {
        let label = bot::salesforce::sync::category_label(category);
        assert!(xml.contains(&format!("<fullName>{label}</fullName>")), "Risk_Category__c lacks {label}");
    }
    // The score fits the field: 0–100 in three digits without decimals.
    let score = field("Opportunity", "Risk_Score__c");
    assert_eq!((element(&score, "precision"), element(&score, "scale")), (Some("3"), Some("0")));
    // Tasks are upserted on an external id.
    let key = field("Activity", "Dealwatch_Key__c");
    assert_eq!(element(&key, "externalId"), Some("true"));
}

#[test]
fn the_packages_offline_checks_pass() {
    let dir = package();
    if !Path::new(&dir.join("node_modules")).is_dir() {
        if std::env::var("DEALWATCH_REQUIRE_SFDC").is_ok_and(|v| v == "1") {
            panic!(
                "sfdc-package/node_modules is missing: run `npm ci --prefix sfdc-package` (CI requires these checks)"
            );
        }
        eprintln!("notice: skipping the package checks; run `npm ci --prefix sfdc-package` to include them");
        return;
    }
    let out = std::process::Command::new("npm")
        .args(["run", "--silent", "check"])
        .current_dir(&dir)
        .output()
        .expect("npm runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "npm run check failed:\n{said}");
    assert!(said.contains("5 passed, 0 failed"), "every check ran:\n{said}");
}
