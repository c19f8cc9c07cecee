package router

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// SetAccounts sets what modules change accounts through (module.Registrar Accounts): the
// engine, which knows the operator's password program. Without it (a router run alone),
// modules change the store's keys. Safe for concurrent use.
func (r *Router) SetAccounts(a module.Accounts) {
	if a == nil {
		r.accounts.Store(nil)
		return
	}
	r.accounts.Store(&a)
}

func (m *modReg) Accounts() module.Accounts {
	if a := m.g.r.accounts.Load(); a != nil {
		return *a
	}
	return storeAccounts{m.g.r.opts.Store}
}

// storeAccounts changes local accounts only: SCRAM keys and removal in the store.
type storeAccounts struct{ st store.Store }

func (a storeAccounts) SetPassword(user, password string) error {
	keys, err := creds.DeriveAll(password, creds.DefaultIter)
	if err != nil {
		return err
	}
	return a.st.Accounts().SetCredentials(user, keys)
}

func (a storeAccounts) Remove(user string) error { return a.st.Accounts().Delete(user) }
