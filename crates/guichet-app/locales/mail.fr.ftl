# Courriels envoyés par guichet, en français. Chaque avis a un objet
# (-subject) et un corps (-body). Variables entre accolades.

account-verification-subject = Confirmez votre adresse courriel
account-verification-body =
    Bonjour { $name },

    Pour activer votre compte, ouvrez ce lien dans les 7 jours :
    { $link }

    Si vous n'avez pas créé de compte, ignorez ce message.

application-received-subject = Demande reçue : { $program }
application-received-body =
    Bonjour { $name },

    Nous avons bien reçu votre demande { $dossier } au programme « { $program } ».
    Vous pouvez la suivre ici :
    { $link }

information-requested-subject = Renseignements demandés : { $program }
information-requested-body =
    Bonjour { $name },

    Pour traiter votre demande { $dossier }, nous avons besoin de renseignements d'ici le { $due } :

    { $message }

    Répondez ici :
    { $link }

decision-approved-subject = Demande acceptée : { $program }
decision-approved-body =
    Bonjour { $name },

    Votre demande { $dossier } est acceptée pour un montant de { $amount }.
    La lettre de décision et ses motifs sont ici :
    { $link }

decision-refused-subject = Décision sur votre demande : { $program }
decision-refused-body =
    Bonjour { $name },

    Votre demande { $dossier } n'est pas acceptée. La lettre de décision explique
    pourquoi et comment demander une révision :
    { $link }

agreement-to-sign-subject = À signer : { $title }
agreement-to-sign-body =
    Bonjour { $name },

    « { $title } » attend votre signature, jusqu'au { $until } :
    { $link }

    { $message }

signing-reminder-subject = Rappel — à signer : { $title }
signing-reminder-body =
    Bonjour { $name },

    « { $title } » attend toujours votre signature, jusqu'au { $until } :
    { $link }

payment-sent-subject = Paiement envoyé : { $program }
payment-sent-body =
    Bonjour { $name },

    Un paiement de { $amount } à { $payee } a été transmis à notre institution
    financière le { $date } (référence { $reference }). Il devrait être déposé
    d'ici quelques jours ouvrables.
    { $link }

repayment-reminder-subject = Rappel : remboursement dû le { $due }
repayment-reminder-body =
    Bonjour { $name },

    Le solde de votre prêt { $dossier }, { $balance }, est à rembourser au plus tard
    le { $due }.
    { $link }
