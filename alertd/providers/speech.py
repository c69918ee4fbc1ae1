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

# what alertd itself says to someone calling an inbound number, by language:
# (voicemail prompt, thanks, nobody answered)
PHRASES = {
    "en": ("Nobody is available. Please leave a message after the tone.", "Thank you. Goodbye.",
           "Nobody could take your call. Please try again later. Goodbye."),
    "es": ("No hay nadie disponible. Deje un mensaje después del tono.", "Gracias. Adiós.",
           "Nadie pudo atender su llamada. Inténtelo más tarde. Adiós."),
    "fr": ("Personne n'est disponible. Laissez un message après le bip.", "Merci. Au revoir.",
           "Personne n'a pu prendre votre appel. Réessayez plus tard. Au revoir."),
    "de": ("Niemand ist erreichbar. Bitte hinterlassen Sie nach dem Ton eine Nachricht.",
           "Danke. Auf Wiederhören.", "Niemand konnte Ihren Anruf annehmen. Auf Wiederhören."),
}


def voice_for(voice: str, language: str | None) -> str:
    if "." in voice:  # Polly.X / Google.X passed straight through
        return voice
    female, male = POLLY.get(language or "en-US", POLLY["en-US"])
    return male if voice == "man" else female


def prompts(language: str | None) -> tuple[str, str, str]:
    """(ask to press 1, thanks, nothing pressed) in ``language``, English when unknown."""
    return PROMPTS.get((language or "en").split("-")[0].lower(), PROMPTS["en"])


def phrases(language: str | None) -> tuple[str, str, str]:
    """(voicemail prompt, thanks, nobody answered) of an inbound call, English when unknown."""
    return PHRASES.get((language or "en").split("-")[0].lower(), PHRASES["en"])


# the words callbacks are stored in: Twilio's, which the log, the dashboard and
# follow-ups (retries of unanswered calls) already speak
CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "failed",
                 "canceled")
SMS_STATUSES = ("queued", "sent", "delivered", "undelivered", "failed", "read")
