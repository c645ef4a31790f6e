//! guichet-web
