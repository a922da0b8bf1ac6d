//! Page lifecycle → membership hints for one joined space (Window scopes only: a worker has no
//! `document`, so there is nothing to watch).
//!
//! - `visibilitychange`: `Command::SetDozing(document.hidden)`. A hidden tab's timers are
//!   throttled (Chrome aligns them to 1 s, and to once a minute after 5 min: the HTML timers
//!   spec allows it, see docs/design.md's membership section); the hint makes members wait
//!   `dozing_suspect_to_down_after` before declaring it down.
//! - `freeze` (Page Lifecycle API, WICG): nothing is sent. A frozen tab runs no timers and
//!   answers no probe, and whatever it sends from the handler may never leave; peers declare it
//!   down by the normal SWIM rule, exactly like a crashed tab. We do not send the dozing hint
//!   here on purpose: it would stretch the others' suspicion of a tab that may never come back.
//! - `resume`: re-sends the current visibility as the dozing hint. The identity renewal needs
//!   no help: the first message that tells membership it was declared down makes it renew its
//!   identity (`core::membership`, foca's "declared down while alive").
//!
//! The `pagehide` leave is not here (it belongs to the tab's lifecycle in `js::profile`).

use std::rc::Weak;

use js_sys::{Function, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::EventTarget;

use crate::browser::peer::BrowserSpace;

/// A `document` event listener: the event name and the closure registered for it.
type Listener = (&'static str, Closure<dyn Fn()>);

/// The listeners one space added to `document`; removed on drop (when the space stops).
pub struct Lifecycle {
    document: EventTarget,
    listeners: Vec<Listener>,
}

impl Lifecycle {
    /// Watches the page for `space` (weak: the listeners do not keep a left space alive).
    /// `None` outside a Window scope.
    pub fn watch(space: Weak<BrowserSpace>) -> Option<Self> {
        let document = Reflect::get(&js_sys::global(), &"document".into()).ok()?;
        let document: EventTarget = document.dyn_into().ok()?;
        let mut me = Self {
            document,
            listeners: Vec::new(),
        };
        let doc = me.document.clone();
        let hint = move || {
            if let Some(space) = space.upgrade() {
                space.set_dozing(is_hidden(&doc));
            }
        };
        let hint = std::rc::Rc::new(hint);
        for name in ["visibilitychange", "resume"] {
            let h = hint.clone();
            me.add(name, Closure::new(move || h()));
        }
        // A tab that joins while hidden (opened in the background) dozes from the start.
        if is_hidden(&me.document) {
            hint();
        }
        Some(me)
    }

    fn add(&mut self, name: &'static str, f: Closure<dyn Fn()>) {
        let func: &Function = f.as_ref().unchecked_ref();
        // addEventListener only throws for a non-callable listener, which a Closure is not.
        let _ = self.document.add_event_listener_with_callback(name, func);
        self.listeners.push((name, f));
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        for (name, f) in &self.listeners {
            let _ = self
                .document
                .remove_event_listener_with_callback(name, f.as_ref().unchecked_ref());
        }
    }
}

/// `document.hidden` (HTML "page visibility"); `false` if it cannot be read.
fn is_hidden(document: &EventTarget) -> bool {
    Reflect::get(document, &"hidden".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}
