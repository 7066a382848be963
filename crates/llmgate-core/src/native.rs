//! The Responses API served natively: what the inbound Responses layer hands down beside the
//! translated chat request, and what the provider marks its answer with.
//!
//! The router picks the deployment below the Responses layer, so the layer cannot know whether
//! the request will be translated. It attaches the call as the client made it
//! ([`NativeResponses`], on the request) next to the chat [`crate::LlmRequest`] every layer
//! reads; a deployment that serves the Responses API itself sends that call upstream as it is
//! and marks its answer [`NativeAnswer`] (on the response), which the layer then passes through
//! instead of translating it back. Any other deployment serves the chat request, unless the call
//! cannot be translated ([`NativeResponses::untranslatable`]).
//!
//! A follow-up of a response stored upstream must reach the deployment (and credential) that
//! made it: the layer puts [`PinnedDeployment`] on the request and the router sends every
//! attempt there.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::ApiError;

/// One Responses API call, as the upstream's `/responses` endpoints take it.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsesCall {
    /// `POST /responses` with this body: the client's, gateway-only fields taken out,
    /// `previous_response_id` the upstream's own id. The provider sets `model` to the
    /// deployment's.
    Create(Map<String, Value>),
    /// `GET /responses/{id}` (`input_items`: `GET /responses/{id}/input_items`, with the
    /// client's query string).
    Retrieve {
        /// The upstream's response id.
        id: String,
        /// List the response's input items instead.
        input_items: bool,
        /// The client's query string (`after`, `limit`, `order`), passed on.
        query: Option<String>,
    },
    /// `DELETE /responses/{id}`.
    Delete {
        /// The upstream's response id.
        id: String,
    },
    /// `POST /responses/compact` with this body, as [`ResponsesCall::Create`]'s: the
    /// upstream compacts the conversation into items of its own (a `compaction` item with
    /// `encrypted_content`); no gateway translates that.
    Compact(Map<String, Value>),
}

/// Extension on a request: the Responses API call, for a deployment that serves it natively.
#[derive(Debug, Clone)]
pub struct NativeResponses(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    call: ResponsesCall,
    untranslatable: Option<ApiError>,
}

impl NativeResponses {
    /// `call`, which the chat request beside it translates fully.
    pub fn new(call: ResponsesCall) -> Self {
        NativeResponses(Arc::new(Inner {
            call,
            untranslatable: None,
        }))
    }

    /// `call`, which only a native deployment can serve: any other fails with `why`.
    pub fn only_native(call: ResponsesCall, why: ApiError) -> Self {
        NativeResponses(Arc::new(Inner {
            call,
            untranslatable: Some(why),
        }))
    }

    /// The call.
    pub fn call(&self) -> &ResponsesCall {
        &self.0.call
    }

    /// Why a deployment that translates to chat completions cannot serve this call (built-in
    /// tools, a conversation stored upstream, a stored response read back); `None` when the
    /// chat request beside it says everything.
    pub fn untranslatable(&self) -> Option<&ApiError> {
        self.0.untranslatable.as_ref()
    }
}

/// Extension on a response: the body is the upstream's Responses API answer (a response
/// object, its events, a deletion or an item list), passed through; not a chat completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeAnswer;

/// Extension on a request: send every attempt to this deployment (by id), whatever the model
/// or fallback group says, because the state the request continues lives there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedDeployment(pub Arc<str>);
