"""Model templates (Scale GenAI Platform): launch scaffolding shared by many models, with the parameters injected
when a model is made from a template and when it is called."""
