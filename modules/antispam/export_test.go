package antispam

// OnChallenge tells f the id and text of every challenge a stranger is sent.
func OnChallenge(f func(id, text string)) { challengeIssued = f }

// SetChallengesPerMinute changes the server-wide bound on challenges a minute.
func SetChallengesPerMinute(n int) { challengesPerMinute.Store(int64(n)) }
