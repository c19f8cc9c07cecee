package module

// Hook orders, lower first, in one place so the pipeline reads top to bottom.
const (
	OrderBlocking  = 100 // refuse before anything is stored or copied
	OrderStrangers = 120 // remote strangers over their budget, refused before anything keeps their messages
	OrderPrivacy   = 150
	OrderRoster    = 200 // subscription state machine
	OrderPEP       = 290 // XEP-0163: note contacts' resources and caps before presence delivery
	OrderPresence  = 300 // broadcast, probes, directed presence
	OrderVCard     = 250 // avatar hash added to outgoing presence, before the broadcast
	OrderStanzaID  = 380 // XEP-0359 stamp before copies and archive
	OrderArchive   = 390 // after the stamp, before copies: a carbon carries the archive id
	OrderCarbons   = 400
	OrderPush      = 850 // XEP-0357: notify app servers before offline storage takes the message
	OrderOffline   = 900 // store when nobody is available
	OrderDeliver   = 1000
)
