//! Vertex AI's `litellm_params`: `vertex_project` (`vertex_ai_project`), `vertex_location`
//! (`vertex_ai_location`) and `vertex_credentials`, else LiteLLM's environment variables
//! (`VERTEXAI_PROJECT`, `VERTEXAI_LOCATION`, `GOOGLE_APPLICATION_CREDENTIALS`).
//!
//! The project may also come from the credentials' `project_id`, as Google's libraries take
//! it. Credentials are looked for in Google's application-default order: `vertex_credentials`,
//! `GOOGLE_APPLICATION_CREDENTIALS`, the file `gcloud auth application-default login` writes
//! (`$CLOUDSDK_CONFIG/application_default_credentials.json`, else
//! `$HOME/.config/gcloud/...`), when it exists; with none of them and no `api_key`, tokens
//! come from the metadata server (`GCE_METADATA_HOST`, else `metadata.google.internal`), as
//! Google's libraries get them on GCE, GKE (workload identity) and Cloud Run. A deployment with neither a project nor an `api_key` (Vertex's express mode) is an
//! error naming `vertex_project`.

use std::sync::Arc;

use llmgate_core::{GoogleCredentials, Secret, VertexParams};

use crate::node::Node;
use crate::problems::key_path;
use crate::walk::Walk;

/// Vertex AI's default location, as LiteLLM's.
pub(crate) const DEFAULT_LOCATION: &str = "us-central1";

/// The metadata server's host on Google Cloud, as Google's libraries name it.
pub(crate) const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// The `vertex_*` keys as written (before defaults).
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// The first `vertex_*` key written, for the warning on other providers.
    pub(crate) seen: Option<&'static str>,
    pub(crate) project: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) credentials: Option<Secret>,
}

/// Warns that `written`'s keys are ignored: the deployment is not a Vertex AI one.
pub(crate) fn unused(w: &mut Walk<'_>, written: &Written, path: &str) {
    if let Some(key) = written.seen {
        w.report.warning(
            &key_path(path, key),
            "only vertex_ai deployments use vertex_* credentials: ignored",
        );
    }
}

/// `vertex_credentials`: a path, the JSON as a string, or the JSON written as a mapping.
pub(crate) fn credentials(w: &mut Walk<'_>, node: &Node, path: &str) -> Option<Secret> {
    match node {
        Node::Map(_) => {
            let json = w.json(node, path);
            Some(Secret::new(json.to_string()))
        }
        other => w
            .secret(other, path)
            .filter(|s| !s.expose().trim().is_empty()),
    }
}

/// The deployment's [`VertexParams`] from what was written and the environment; `None`, with
/// the error at `vertex_project`, when no project can be found and there is no `api_key`.
pub(crate) fn resolve(
    w: &mut Walk<'_>,
    written: Written,
    has_api_key: bool,
    path: &str,
    has_mock: bool,
) -> Option<VertexParams> {
    let credentials = written
        .credentials
        .map(|s| {
            if s.expose().trim_start().starts_with('{') {
                GoogleCredentials::Json(s)
            } else {
                GoogleCredentials::File(Arc::from(s.expose()))
            }
        })
        .or_else(|| {
            w.env
                .lookup("GOOGLE_APPLICATION_CREDENTIALS")
                .filter(|p| !p.is_empty())
                .map(|p| GoogleCredentials::File(Arc::from(p)))
        })
        .or_else(|| gcloud_adc(w).map(|p| GoogleCredentials::File(Arc::from(p))));
    let project = written
        .project
        .or_else(|| w.env.lookup("VERTEXAI_PROJECT").filter(|p| !p.is_empty()))
        .or_else(|| credentials.as_ref().and_then(project_of));
    let location = written
        .location
        .or_else(|| w.env.lookup("VERTEXAI_LOCATION").filter(|p| !p.is_empty()))
        .unwrap_or_else(|| DEFAULT_LOCATION.to_owned());
    if project.is_none() && !has_api_key && !has_mock {
        w.report.error(
            &key_path(path, "vertex_project"),
            "vertex_ai needs a Google Cloud project: set vertex_project (or VERTEXAI_PROJECT), \
             or credentials with a project_id, or an api_key (Vertex express mode)",
        );
        return None;
    }
    let credentials = match credentials {
        None if !has_api_key => Some(GoogleCredentials::Metadata(Arc::from(
            w.env
                .lookup("GCE_METADATA_HOST")
                .filter(|h| !h.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned()),
        ))),
        other => other,
    };
    if let Some(GoogleCredentials::File(file)) = &credentials {
        if !std::path::Path::new(&**file).is_file() && !has_mock {
            w.report.warning(
                &key_path(path, "vertex_credentials"),
                format!("the credentials file {file} does not exist (yet): requests will fail until it does"),
            );
        }
    }
    Some(VertexParams {
        project: project.map(Arc::from),
        location: Arc::from(location),
        credentials,
    })
}

/// The application-default credentials file `gcloud` writes, when it exists.
fn gcloud_adc(w: &Walk<'_>) -> Option<String> {
    let dir = w
        .env
        .lookup("CLOUDSDK_CONFIG")
        .filter(|d| !d.is_empty())
        .or_else(|| {
            w.env
                .lookup("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| format!("{home}/.config/gcloud"))
        })?;
    let file = format!(
        "{}/application_default_credentials.json",
        dir.trim_end_matches('/')
    );
    std::path::Path::new(&file).is_file().then_some(file)
}

/// The `project_id` of the credentials, when they are readable JSON that has one.
fn project_of(credentials: &GoogleCredentials) -> Option<String> {
    let text = match credentials {
        GoogleCredentials::Json(s) => s.expose().to_owned(),
        GoogleCredentials::File(path) => std::fs::read_to_string(&**path).ok()?,
        GoogleCredentials::Metadata(_) => return None,
    };
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("project_id")?
        .as_str()
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}
