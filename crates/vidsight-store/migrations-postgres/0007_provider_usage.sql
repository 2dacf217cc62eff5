-- Tokens spent with analysis providers (Gemini, OpenAI-compatible) and their cost, per account
-- and month, charged when a provider answers; checked against providers.tokens_per_month.
ALTER TABLE usage_ledger ADD COLUMN provider_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_ledger ADD COLUMN provider_cost_micros BIGINT NOT NULL DEFAULT 0;
