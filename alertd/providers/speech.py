"""What a call says, for every provider: Polly voices by language, and the
press-1 prompts in the caller's language. Shared so that a call sounds the
same through any provider that can say it."""
from __future__ import annotations

# Twilio no longer lists the old 'alice', 'man' and 'woman' voices; we send
# Amazon Polly voices it still serves, by language (female, male).
POLLY = {
    "en-US": ("Polly.Joanna", "Polly.Matthew"), "en-GB": ("Polly.Amy", "Polly.Brian"),
    "en-AU": ("Polly.Nicole", "Polly.Russell"), "en-IN": ("Polly.Aditi", "Polly.Aditi"),
    "es-MX": ("Polly.Mia", "Polly.Mia"), "es-US": ("Polly.Penelope", "Polly.Miguel"),
    "es-ES": ("Polly.Conchita", "Polly.Enrique"), "fr-FR": ("Polly.Celine", "Polly.Mathieu"),
    "fr-CA": ("Polly.Chantal", "Polly.Chantal"), "de-DE": ("Polly.Marlene", "Polly.Hans"),
    "it-IT": ("Polly.Carla", "Polly.Giorgio"), "pt-BR": ("Polly.Vitoria", "Polly.Ricardo"),
    "nl-NL": ("Polly.Lotte", "Polly.Ruben"), "ja-JP": ("Polly.Mizuki", "Polly.Takumi"),
}
PROMPTS = {
    "en": ("Press 1 to acknowledge.", "Acknowledged. Thank you. Goodbye.", "No key was pressed. Goodbye."),
    "es": ("Presione 1 para confirmar.", "Confirmado. Gracias. Adiós.", "No se presionó ninguna tecla. Adiós."),
    "fr": ("Appuyez sur 1 pour confirmer.", "Confirmé. Merci. Au revoir.", "Aucune touche. Au revoir."),
    "de": ("Drücken Sie 1 zur Bestätigung.", "Bestätigt. Danke. Auf Wiederhören.",
           "Keine Eingabe. Auf Wiederhören."),
}


def voice_for(voice: str, language: str | None) -> str:
    if "." in voice:  # Polly.X / Google.X passed straight through
        return voice
    female, male = POLLY.get(language or "en-US", POLLY["en-US"])
    return male if voice == "man" else female


def prompts(language: str | None) -> tuple[str, str, str]:
    """(ask to press 1, thanks, nothing pressed) in ``language``, English when unknown."""
    return PROMPTS.get((language or "en").split("-")[0].lower(), PROMPTS["en"])


# the words callbacks are stored in: Twilio's, which the log, the dashboard and
# follow-ups (retries of unanswered calls) already speak
CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed",
                 "canceled")
SMS_STATUSES = ("queued", "sent", "delivered", "undelivered", "failed", "read")
