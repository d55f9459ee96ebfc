//! Turning a [`Prompt`] into tokens: the model's chat template for
//! conversations, then its vocabulary. Shared by the engine handle (requests are
//! tokenized on a blocking thread of the caller, never on the engine thread that
//! decodes every live stream) and `POST /tokenize`.

use std::sync::Arc;

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;

use super::{EngineError, Prompt};

/// The model's tokenizer and chat template.
pub struct Tokenizer {
    model: Arc<LlamaModel>,
    template: Option<LlamaChatTemplate>,
    /// Tokens one sequence may hold (prompt and answer).
    pub ctx_per_seq: u32,
}

impl Tokenizer {
    pub(super) fn new(model: Arc<LlamaModel>, ctx_per_seq: u32) -> Self {
        let template = model.chat_template(None).ok();
        Self {
            model,
            template,
            ctx_per_seq,
        }
    }

    /// Whether the GGUF carries a chat template (else ChatML is used).
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// All tokens of a prompt, as the engine would decode them; no length check.
    pub fn tokens(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, EngineError> {
        let vocab = self.model.vocab();
        Ok(match prompt {
            Prompt::Text(text) => vocab.tokenize(text.as_bytes(), true, false),
            Prompt::Chat(turns) => {
                let rendered = self.render_chat(turns)?;
                vocab.tokenize(rendered.as_bytes(), true, true)
            }
        })
    }

    /// The tokens of a prompt a sequence can take: not empty, and leaving at
    /// least one cell for the answer.
    pub fn prompt(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, EngineError> {
        let tokens = self.tokens(prompt)?;
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if tokens.len() as u64 >= u64::from(self.ctx_per_seq) {
            return Err(EngineError::PromptTooLong {
                prompt_tokens: tokens.len() as u32,
                context_tokens: self.ctx_per_seq,
            });
        }
        Ok(tokens)
    }

    fn render_chat(&self, turns: &[(String, String)]) -> Result<String, EngineError> {
        let messages = turns
            .iter()
            .map(|(role, content)| LlamaChatMessage::new(role.clone(), content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let fallback;
        let template = match &self.template {
            Some(t) => t,
            None => {
                // No template in the GGUF: ChatML is the most common convention.
                fallback = LlamaChatTemplate::new("chatml")
                    .map_err(|e| EngineError::Template(e.to_string()))?;
                &fallback
            }
        };
        self.model
            .apply_chat_template(template, &messages, true)
            .map_err(|e| EngineError::Template(e.to_string()))
    }
}
