package antispam

// OnChallenge tells f the id and text of every challenge a stranger is sent.
func OnChallenge(f func(id, text string)) { challengeIssued = f }
