//! guichet-app
